"""MODE=real with nothing listening at MODEL_SERVER_URL: uploads are kept and marked pending."""

from __future__ import annotations

from tests.backend.helpers import API, circles_png, running_backend, upload
from tests.servers import free_port


def test_upload_is_kept_and_marked_pending_with_202(model_down_backend):
    data = circles_png(seed=600)
    with model_down_backend.client() as c:
        r = upload(c, data)
        assert r.status_code == 202, r.text
        body = r.json()
        assert r.headers["location"] == f"{API}{body['id']}"
        assert body["status"] == "pending" and body["objects"] == []
        assert "unreachable" in body["error"] and "gave up after" in body["error"]
        assert body["attempts"] >= 2  # retried until MODEL_RETRY_DEADLINE_S (1 s in tests)
        assert body["model_version"] is None and body["timings"]["inference_ms"] is None

        got = c.get(f"{API}{body['id']}").json()
        assert got["status"] == "pending" and got["error"] == body["error"]
        assert c.get(f"{API}{body['id']}/file").content == data
        assert c.get(f"{API}{body['id']}/annotated").status_code == 200

        r = c.post(f"{API}{body['id']}/detect")
        assert r.status_code == 503
        err = r.json()
        assert err["image_id"] == body["id"] and "model server unavailable" in err["error"]
        after = c.get(f"{API}{body['id']}").json()
        assert after["status"] == "pending" and after["attempts"] > body["attempts"]
    assert model_down_backend.file_path(data).read_bytes() == data


def test_list_filters_by_status(model_down_backend):
    with model_down_backend.client() as c:
        iid = upload(c, circles_png(seed=602)).json()["id"]
        pending = c.get(API, params={"status": "pending", "limit": 200}).json()
        assert iid in [i["id"] for i in pending["items"]]
        assert {i["status"] for i in pending["items"]} == {"pending"}
        assert pending["total"] == len(pending["items"])
        assert c.get(API, params={"status": "done"}).json() == {
            "items": [],
            "total": 0,
            "limit": 20,
            "offset": 0,
        }
        r = c.get(API, params={"status": "lost"})
        assert r.status_code == 422 and "status" in r.json()["error"]


def test_ready_names_the_failing_check(model_down_backend):
    with model_down_backend.client() as c:
        r = c.get("/health/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]
    assert body["checks"]["model_server"]["ok"] is False
    assert body["checks"]["model_server"]["error"]


def test_pending_images_show_in_metrics(model_down_backend):
    with model_down_backend.client() as c:
        upload(c, circles_png(seed=601))
        text = c.get("/metrics").text
    pending = [ln for ln in text.splitlines() if ln.startswith("backend_images_pending ")]
    assert pending and float(pending[0].split()[1]) >= 1
    assert 'backend_detections_total{outcome="pending"}' in text
    assert "backend_model_retries_total" in text


def test_ready_can_ignore_a_model_scaled_to_zero(tmp_path):
    env = {
        "MODE": "real",
        "MODEL_SERVER_URL": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": "",
        "READY_REQUIRES_MODEL": "false",
    }
    with running_backend(tmp_path / "data", env) as server, server.client() as c:
        r = c.get("/health/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    model = r.json()["checks"]["model_server"]
    # Not even asked: a probe through Knative's activator would wake a model scaled to zero.
    assert model["ok"] is None and model["required"] is False and "not checked" in model["error"]
