"""Liveness, readiness, Prometheus metrics, OpenAPI docs, and the page served at /."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.backend.helpers import API, circles_png, running_backend, upload


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_liveness_and_readiness(backend):
    with backend.client() as c:
        assert c.get("/health").json() == {"status": "ok"}
        r = c.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "storage", "model_server"}
    assert all(check["ok"] for check in body["checks"].values())


def test_metrics_count_requests_inference_and_objects(backend):
    with backend.client() as c:
        before = _samples(c.get("/metrics").text)
        body = upload(c, circles_png(seed=1200), score_threshold=0.0).json()
        c.get(f"{API}{body['id']}")
        after_text = c.get("/metrics").text
    after = _samples(after_text)
    name = "backend_http_requests_total"
    post = (name, (("method", "POST"), ("route", "/api/v1/images/"), ("status", "201")))
    assert after[post] == before.get(post, 0) + 1
    get = (name, (("method", "GET"), ("route", "/api/v1/images/{image_id}"), ("status", "200")))
    assert after[get] >= 1  # labelled by route template, not by id
    assert body["id"] not in after_text
    count = ("backend_inference_duration_seconds_count", ())
    assert after[count] == before.get(count, 0) + 1
    objects = ("backend_objects_detected_total", ())
    assert after[objects] == before.get(objects, 0) + body["num_detections"]
    assert ("backend_images_pending", ()) in after
    assert any(name == "backend_http_request_duration_seconds_bucket" for name, _ in after)


def test_openapi_documents_the_api(backend):
    with backend.client() as c:
        assert "swagger" in c.get("/docs").text.lower()
        spec = c.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/images/",
        "/api/v1/images/{image_id}",
        "/api/v1/images/{image_id}/file",
        "/api/v1/images/{image_id}/annotated",
        "/api/v1/images/{image_id}/objects",
        "/api/v1/images/{image_id}/objects/{object_id}",
        "/api/v1/images/{image_id}/detect",
        "/health",
        "/health/ready",
        "/metrics",
    ):
        assert path in paths, path
    post = paths["/api/v1/images/"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "202", "413", "415", "422", "401"} <= set(post["responses"])
    assert "503" in paths["/api/v1/images/{image_id}/detect"]["post"]["responses"]
    assert "pending" in post["responses"]["202"]["description"]


def test_root_points_to_the_docs_without_a_page(backend):
    with backend.client() as c:
        assert c.get("/").json()["docs"] == "/docs"


def test_static_page_is_served_at_root_when_present(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<html><body>circle page</body></html>")
    (static / "app.js").write_text("console.log('hi')")
    env = {"MODE": "dummy", "DATABASE_URL": "", "STATIC_DIR": str(static)}
    with running_backend(tmp_path / "data", env) as server, httpx.Client(base_url=server.url) as c:
        r = c.get("/")
        assert r.status_code == 200 and "circle page" in r.text
        assert c.get("/app.js").text == "console.log('hi')"
        assert c.get("/missing.js").json() == {"error": "Not Found"}
        assert c.get("/health").json() == {"status": "ok"}
        assert upload(c, circles_png(seed=1201)).status_code == 201  # no API_KEY here
        assert c.get(API).json()["total"] == 1
