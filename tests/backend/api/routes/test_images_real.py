"""MODE=real: the backend calls a real `bentoml serve` of the Bento (HTTP on SQLite, gRPC on
PostgreSQL). The weights may be a placeholder, so the check is consistency: what the backend
stores equals what the V2 server returns for the same bytes and parameters."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend.inference.v2 import parse_circles
from tests.backend.helpers import (
    API,
    BackendServer,
    circles_png,
    start_backend,
    stop_backend,
    upload,
)
from tests.backend.inference.test_v2 import direct_v2

LOOSE = {"score_threshold": 0.0, "max_detections": 20}


@pytest.fixture(scope="session", params=[("sqlite", "http"), ("postgres", "grpc")], ids=str)
def real_backend(request, bento_server, tmp_path_factory) -> Iterator[BackendServer]:
    database, protocol = request.param
    env = {
        "MODE": "real",
        "MODEL_PROTOCOL": protocol,
        "MODEL_SERVER_URL": bento_server.grpc_url if protocol == "grpc" else bento_server.http_url,
        "DATABASE_URL": request.getfixturevalue("postgres_url") if database == "postgres" else "",
    }
    server = start_backend(tmp_path_factory.mktemp(f"real-{database}-{protocol}"), env)
    yield server
    stop_backend(server)


def assert_same_objects(objects: list[dict], outputs) -> None:
    expected = parse_circles(outputs)
    assert len(objects) == len(expected)
    for obj, want in zip(objects, expected, strict=True):
        assert obj["center"]["x"] == pytest.approx(want.cx, abs=1e-3)
        assert obj["center"]["y"] == pytest.approx(want.cy, abs=1e-3)
        assert obj["radius"] == pytest.approx(want.radius, abs=1e-3)
        assert obj["bbox"]["x1"] == pytest.approx(want.x1, abs=1e-3)
        assert obj["bbox"]["y2"] == pytest.approx(want.y2, abs=1e-3)
        assert obj["score"] == pytest.approx(want.score, abs=1e-5)


def test_stored_objects_equal_the_v2_servers_answer(real_backend, bento_server):
    data = circles_png(seed=500, size=(200, 160))
    with real_backend.client() as c:
        r = upload(c, data, **LOOSE)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "done" and body["model_name"] == "circle-detector"
        meta = httpx.get(f"{bento_server.base_url}/v2/models/circle-detector").json()
        assert body["model_version"] == str(meta["versions"][-1])
        assert body["timings"]["inference_ms"] > 0
        outputs = direct_v2(bento_server.http_url, data, **LOOSE)
        assert_same_objects(body["objects"], outputs)
        assert_same_objects(c.get(f"{API}{body['id']}/objects").json(), outputs)

        again = c.post(f"{API}{body['id']}/detect", params=LOOSE).json()
        assert again["status"] == "done" and again["attempts"] == 2
        assert_same_objects(again["objects"], outputs)


def test_default_threshold_is_applied_by_the_model(real_backend, bento_server):
    data = circles_png(seed=501, size=(200, 160))
    with real_backend.client() as c:
        body = upload(c, data, score_threshold=0.3, max_detections=3).json()
    assert body["score_threshold"] == 0.3
    assert all(o["score"] >= 0.3 for o in body["objects"]) and len(body["objects"]) <= 3
    outputs = direct_v2(bento_server.http_url, data, score_threshold=0.3, max_detections=3)
    assert_same_objects(body["objects"], outputs)


def test_ready_checks_the_model_server(real_backend):
    with real_backend.client() as c:
        r = c.get("/health/ready")
    assert r.status_code == 200 and r.json()["checks"]["model_server"]["ok"] is True
