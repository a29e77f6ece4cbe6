"""Retries that know what can succeed, end to end: a real `python -m backend` in MODE=real
against a real HTTP "model server" on 127.0.0.1 that answers the statuses a test chooses
(tests/backend/fake_model.py); every call it receives is counted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.backend.fake_model import FakeModel, fake_model
from tests.backend.helpers import (
    API,
    BackendServer,
    circles_png,
    running_backend,
    start_backend,
    stop_backend,
    upload,
    wait_until,
)

RETRY_ENV = {
    "MODE": "real",
    "DATABASE_URL": "",
    "MODEL_RETRY_DEADLINE_S": "0.5",
    "MODEL_RETRY_BACKOFF_S": "0.05",
    "MODEL_RETRY_BACKOFF_MAX_S": "0.2",
    "PENDING_RETRY_INTERVAL_S": "2",
    "PENDING_RETRY_POLL_S": "0.2",
}


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModel]:
    with fake_model() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(model, tmp_path_factory) -> Iterator[BackendServer]:
    env = {**RETRY_ENV, "MODEL_SERVER_URL": model.url}
    backend = start_backend(tmp_path_factory.mktemp("pending"), env)
    yield backend
    stop_backend(backend)


@pytest.fixture(autouse=True)
def healthy_model(model) -> Iterator[None]:
    model.mode, model.bad, model.bad_status, model.headers = 200, [], 500, {}
    yield
    model.mode, model.bad = 200, []


def pending_total(server: BackendServer) -> int:
    with server.client() as c:
        return c.get(API, params={"status": "pending", "limit": 1}).json()["total"]


def test_a_deterministic_500_fails_the_image_after_three_calls(server, model):
    bad = circles_png(seed=9001)
    model.bad = [bad]
    before = model.infers()
    with server.client() as c:
        r = upload(c, bad)
        good = upload(c, circles_png(seed=9002))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "failed" and body["attempts"] == 3
    assert "500" in body["error"] and "given up on this image" in body["error"]
    assert model.infers() - before == 3 + 1  # three for the bad image, one for the good one
    assert good.status_code == 201
    time.sleep(1)  # the background loop does not pick a failed image up again
    assert model.infers() - before == 4


def test_a_refused_image_is_failed_at_once(server, model):
    bad = circles_png(seed=9003)
    model.bad, model.bad_status = [bad], 400
    before = model.infers()
    with server.client() as c:
        r = upload(c, bad)
    assert r.status_code == 202 and r.json()["status"] == "failed" and r.json()["attempts"] == 1
    assert model.infers() - before == 1


def test_transient_errors_back_off_until_the_deadline_then_pending(server, model):
    model.mode = 503
    before = model.infers()
    with server.client() as c:
        start = time.monotonic()
        r = upload(c, circles_png(seed=9004))
        elapsed = time.monotonic() - start
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    calls = model.infers() - before
    assert calls >= 3 and r.json()["attempts"] == calls  # 0.05, 0.1, 0.2, 0.2 ... within 0.5 s
    assert 0.4 < elapsed < 3
    model.mode = 200
    wait_until(lambda: pending_total(server) == 0, what="pending image detected")


def test_one_bad_image_never_stops_the_round(server, model):
    """Five images pending during an outage; one has lost its file, one the model refuses.
    When the model is back all five are settled: three done, two failed with the reason."""
    model.mode = 503
    images = [circles_png(seed=9100 + i) for i in range(5)]
    with server.client() as c:
        ids = [upload(c, data).json()["id"] for data in images]
    assert pending_total(server) == 5
    server.file_path(images[1]).unlink()
    model.bad, model.bad_status = [images[3]], 400
    model.mode = 200
    wait_until(lambda: pending_total(server) == 0, what="all five settled")
    with server.client() as c:
        states = [c.get(f"{API}{i}").json() for i in ids]
    assert [s["status"] for s in states] == ["done", "failed", "done", "failed", "done"]
    assert "missing" in states[1]["error"]
    assert "400" in states[3]["error"]


def test_a_wrong_model_name_fails_at_once_and_readiness_says_misconfigured(model, tmp_path):
    env = {**RETRY_ENV, "MODEL_SERVER_URL": model.url, "MODEL_NAME": "no-such-model"}
    before = model.infers()
    with running_backend(tmp_path, env) as backend, backend.client() as c:
        start = time.monotonic()
        r = upload(c, circles_png(seed=9200))
        assert time.monotonic() - start < 2
        assert r.status_code == 202 and r.json()["status"] == "failed", r.text
        assert r.json()["attempts"] == 1 and "MODEL_NAME='no-such-model'" in r.json()["error"]
        assert model.infers() - before == 1
        ready = c.get("/health/ready")
        assert ready.status_code == 503
        check = ready.json()["checks"]["model_server"]
        assert check["ok"] is False and check["error"].startswith("misconfigured: ")
        assert "404" in check["error"] and "MODEL_NAME" in check["error"]


def test_a_misconfiguration_shows_in_readiness_that_does_not_call_the_model(model, tmp_path):
    """Under Knative (READY_REQUIRES_MODEL=false) readiness never calls the model, yet a
    misconfiguration that an upload met (here the server answering 403) is reported without
    taking the backend out of service, and cleared by the next successful call."""
    env = {**RETRY_ENV, "MODEL_SERVER_URL": model.url, "READY_REQUIRES_MODEL": "false"}
    with running_backend(tmp_path, env) as backend, backend.client() as c:
        assert c.get("/health/ready").json()["checks"]["model_server"]["ok"] is None
        model.mode = 403
        assert upload(c, circles_png(seed=9210)).json()["status"] == "failed"
        ready = c.get("/health/ready")
        assert ready.status_code == 200
        check = ready.json()["checks"]["model_server"]
        assert check["ok"] is False and check["required"] is False
        assert check["error"].startswith("misconfigured: ") and "403" in check["error"]
        model.mode = 200
        assert upload(c, circles_png(seed=9211)).json()["status"] == "done"
        assert c.get("/health/ready").json()["checks"]["model_server"]["ok"] is None


def test_two_replicas_never_detect_one_image_twice(model, tmp_path, postgres_database_factory):
    """Two backends on one PostgreSQL database and storage drain a backlog of 30: exactly 30
    infer calls (claims by row locks, FOR UPDATE SKIP LOCKED; SQLite is for one replica)."""
    model.mode = 503
    env = {
        **RETRY_ENV,
        "MODEL_SERVER_URL": model.url,
        "PENDING_RETRY_POLL_S": "0.05",
        "MODEL_RETRY_DEADLINE_S": "0",  # the uploads answer 202 at once
        "DATABASE_URL": postgres_database_factory(),
    }
    first = start_backend(tmp_path, env)
    try:
        second = start_backend(tmp_path, env)
        try:
            with first.client() as c:
                for i in range(30):
                    assert upload(c, circles_png(seed=9300 + i)).status_code == 202
            assert pending_total(first) == 30
            before = model.infers(200)
            model.mode = 200
            wait_until(lambda: pending_total(first) == 0, what="backlog drained")
            time.sleep(0.5)
            assert model.infers(200) - before == 30
        finally:
            stop_backend(second)
    finally:
        stop_backend(first)
