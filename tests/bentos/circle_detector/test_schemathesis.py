"""Fuzz the V2 REST routes with the Open Inference Protocol's OpenAPI (schemathesis), the
statistics, model configuration and repository extensions included: whatever the generated
request, the Bento must never answer 5xx, and stays live. A fuzzed unload may unload the
session's model: every repository case is followed by a load that brings it back."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

SPEC = Path(__file__).with_name("specs") / "open_inference_rest.patched.yaml"

schema = schemathesis.openapi.from_path(str(SPEC))


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_5xx(case, bento_server, session):
    if "model_name" in (case.path_parameters or {}):
        case.path_parameters["model_name"] = "circle-detector"  # reach the model, not a 404
    base = bento_server.base_url
    case.call_and_validate(base_url=base, session=session, checks=[not_a_server_error], timeout=30)
    if case.path.startswith("/v2/repository/models/"):
        restored = session.post(f"{base}/v2/repository/models/circle-detector/load", timeout=60)
        assert restored.status_code == 200, restored.text
    assert session.get(f"{base}/v2/health/live", timeout=5).status_code == 200
