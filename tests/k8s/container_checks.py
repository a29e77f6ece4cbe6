"""Checks of the backend's container next to the Bento's (run by scripts/container-test.sh only;
the file name keeps it out of the normal test run).

The two containers share one podman pod, as a Kubernetes pod would share its network: the
backend reaches the Bento at 127.0.0.1:8080. Environment: CONTAINER_BACKEND_URL
(http://127.0.0.1:PORT of the backend) and CONTAINER_BENTO_HTTP (host:port of the Bento).
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.bentos.circle_detector.images import circles_image, encode

BACKEND = os.environ.get("CONTAINER_BACKEND_URL", "")
pytestmark = pytest.mark.skipif(not BACKEND, reason="needs scripts/container-test.sh")


@pytest.fixture(scope="module")
def client():
    with httpx.Client(base_url=BACKEND, timeout=60) as c:
        yield c


def test_ready_checks_database_storage_and_model(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert all(check["ok"] for check in checks.values()), checks


def test_upload_is_detected_through_the_bento_container(client):
    png = encode(circles_image(240, 320, seed=3), "png")
    response = client.post("/api/v1/images/", files={"file": ("rings.png", png, "image/png")})
    assert response.status_code == 201, response.text  # 201: stored and detected by the model
    body = response.json()
    assert body["status"] == "done", body
    image_id = body["id"]
    again = client.get(f"/api/v1/images/{image_id}")
    assert again.status_code == 200
    assert again.json()["id"] == image_id
    file = client.get(f"/api/v1/images/{image_id}/file")
    assert file.status_code == 200 and file.content == png


def test_bad_upload_is_a_clear_4xx(client):
    response = client.post(
        "/api/v1/images/", files={"file": ("x.png", b"not an image", "image/png")}
    )
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_listing_shows_the_stored_upload(client):
    # Stored on the /data volume: the container runs with a read-only root file system.
    response = client.get("/api/v1/images/")
    assert response.status_code == 200
    assert response.json()["total"] >= 1
