"""`bentoml serve`'s own API: `detect`, the Bento's batchable endpoint for BentoML's clients
(`bentoml.SyncHTTPClient`), beside the V2 routes. The single-process launcher (the container)
serves V2 only."""

from __future__ import annotations

from pathlib import Path

import bentoml
import httpx
import pytest

from tests.bentos.circle_detector.images import circles_image, encode, reference


@pytest.fixture(scope="module")
def http(bento_server):
    with httpx.Client(base_url=bento_server.base_url, timeout=30) as client:
        yield client


def test_bentoml_detect_api_answers_circles_and_refuses_garbage(http):
    """Over plain HTTP multipart: circles at the operating point; garbage is a 400."""
    image = circles_image(64, 64, 7)
    files = {"images": ("a.png", encode(image), "image/png")}
    response = http.post("/detect", files=files)
    assert response.status_code == 200, response.text
    expected = reference([image], 0.5, 100)[0]
    found = response.json()[0]
    assert len(found) == len(expected)
    for circle, row in zip(found, expected, strict=True):
        assert circle["center"] == pytest.approx(row[:2].tolist(), abs=0.01)
        assert set(circle) == {"bbox", "center", "radius", "score"}
    garbage = {"images": ("a.png", b"not an image", "image/png")}
    assert http.post("/detect", files=garbage).status_code == 400
    assert http.post("/detect", content=b"{").status_code == 400
    assert http.get("/v2/health/live").status_code == 200


def test_bentomls_own_client_calls_detect(bento_server, tmp_path):
    image = circles_image(80, 80, 8)
    path = tmp_path / "a.png"
    path.write_bytes(encode(image))
    with bentoml.SyncHTTPClient(bento_server.base_url) as client:
        found = client.detect(images=[Path(path)])
    assert len(found) == 1 and len(found[0]) == len(reference([image], 0.5, 100)[0])
