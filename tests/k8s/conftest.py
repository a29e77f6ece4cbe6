"""Fixtures for the offline manifest tests: contracts read once per session.

No Kubernetes cluster can run here: these tests render the real overlays with kustomize and check
every object against the schemas and the code instead of an API server (the one mocked part).
"""

from __future__ import annotations

import pytest

from tests.k8s import contracts


@pytest.fixture(scope="session")
def bento() -> contracts.BentoContract:
    return contracts.bento()


@pytest.fixture(scope="session")
def backend() -> contracts.BackendContract:
    return contracts.backend()


@pytest.fixture(scope="session")
def built_images() -> contracts.Images:
    return contracts.images()


@pytest.fixture(scope="session")
def kubernetes_version() -> str:
    return contracts.kubernetes_version()
