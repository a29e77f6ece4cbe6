"""Shared fixtures: one real Bento server per test session.

`bento_server` imports the committed weights into a temporary BentoML home, runs
`bentoml serve` from the repo root on free ports of 127.0.0.1 (HTTP and gRPC) and waits for
`/v2/health/ready`. It yields a `tests.servers.BentoServer` with `http_url` and `grpc_url`
("127.0.0.1:PORT", as tritonclient wants them) and `metrics_url` (a full URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import BentoServer, prepare_bentoml_home, running_bento


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BentoML home with the committed weights imported (shared by every Bento in the run)."""
    return prepare_bentoml_home(tmp_path_factory.mktemp("bentoml-home"))


@pytest.fixture(scope="session")
def bento_server(bentoml_home: Path) -> Iterator[BentoServer]:
    """The circle-detector Bento, served once for the whole session."""
    with running_bento(bentoml_home) as server:
        yield server
