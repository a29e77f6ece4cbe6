"""Fuzz the backend's own OpenAPI (schemathesis) against the real dummy-mode servers on SQLite
and PostgreSQL: whatever the generated request, never a 5xx, and the server stays live."""

from __future__ import annotations

import pytest
import requests
from hypothesis import HealthCheck, settings

from backend.app import create_app
from backend.config import Settings
from tests.backend.helpers import API_KEY

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402

# The schema of the app as built (nothing is started by create_app itself).
schema = schemathesis.openapi.from_dict(create_app(Settings(mode="dummy")).openapi())


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        s.headers["X-API-Key"] = API_KEY
        yield s


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_5xx(case, backend, session):
    case.call_and_validate(
        base_url=backend.url, session=session, checks=[not_a_server_error], timeout=30
    )
    assert session.get(f"{backend.url}/health", timeout=5).status_code == 200
