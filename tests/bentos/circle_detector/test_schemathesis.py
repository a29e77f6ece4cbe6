"""Fuzz the V2 REST routes with the Open Inference Protocol's OpenAPI (schemathesis):
whatever the generated request, the Bento must never answer 5xx, and stays live."""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, settings

from tests.servers import REPO_ROOT

schemathesis = pytest.importorskip("schemathesis")
SPEC = REPO_ROOT.parent / "shared" / "specs" / "open_inference_rest.patched.yaml"
if not SPEC.is_file():
    pytest.skip(f"the patched V2 spec is not at {SPEC}", allow_module_level=True)

from schemathesis.checks import not_a_server_error  # noqa: E402

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
    case.call_and_validate(
        base_url=bento_server.base_url, session=session, checks=[not_a_server_error], timeout=30
    )
    assert session.get(f"{bento_server.base_url}/v2/health/live", timeout=5).status_code == 200
