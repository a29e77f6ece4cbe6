"""`bentoml serve`'s own API: `detect`, the Bento's batchable endpoint for BentoML's clients
(`bentoml.SyncHTTPClient`), beside the V2 routes. The single-process launcher (the container)
serves V2 only."""

from __future__ import annotations

import io
from pathlib import Path

import bentoml
import httpx
import pytest
from PIL import Image

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


def _bomb_png(side: int = 6000) -> bytes:
    """A side x side 1-bit PNG: a few kB on the wire, side**2 pixels once decoded."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (encode(circles_image(64, 64, 9))[:60], "truncated or corrupt"),
        (b"", "empty"),
        (_bomb_png(), "over the limit"),
        (b"GIF89a" + b"\0" * 64, "not a recognised image"),
    ],
    ids=["truncated", "empty", "decompression-bomb", "wrong-type"],
)
def test_detect_refuses_bad_files_with_a_message(http, content, phrase):
    response = http.post("/detect", files={"images": ("x.png", content, "image/png")})
    assert response.status_code == 400, response.text
    assert phrase in response.text
    assert http.get("/v2/health/live").status_code == 200
