"""Bad, truncated, oversized, wrong-type and hostile REST requests: a 4xx `{"error": ...}` each.

Each case asserts the status and a phrase of the message, then that the server is still live.
"""

from __future__ import annotations

import base64
import io
import json
import struct

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.bentos.circle_detector.images import (
    LOOSE,
    assert_matches_reference,
    circles_image,
    encode,
    reference,
)

INFER = "/v2/models/circle-detector/infer"
HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def http(bento_server):
    with httpx.Client(base_url=bento_server.base_url, timeout=30) as client:
        yield client


def _binary_request(header: dict, blobs: list[bytes]) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(header).encode()
    return head + b"".join(blobs), {HEADER: str(len(head))}


def _bytes_tensor(files: list[bytes]) -> tuple[bytes, dict[str, str]]:
    raw = b"".join(struct.pack("<I", len(f)) + f for f in files)
    header = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [len(files)],
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    return _binary_request(header, [raw])


def _bomb_png(side: int = 6000) -> bytes:
    """A side x side 1-bit PNG: a few kB on the wire, side**2 pixels once decoded."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


def _json(inputs, **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def _uint8(shape, data) -> dict:
    return {"name": "image", "datatype": "UINT8", "shape": shape, "data": data}


CASES = {
    "malformed json": (b'{"inputs": [', {}, 400, "not valid JSON"),
    "not utf-8": (b"\xff\xfe\x00", {}, 400, "not valid JSON"),
    "json array body": (b"[1, 2]", {}, 400, "must be a JSON object"),
    "json nested 100k deep": (b"[" * 100_000 + b"]" * 100_000, {}, 400, "nested too deeply"),
    "data nested 500 deep": (
        b'{"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1], "data": '
        + b"[" * 500
        + b"1"
        + b"]" * 500
        + b"}]}",
        {},
        400,
        "ragged",
    ),
    "no inputs": (b"{}", {}, 400, "'inputs' must be a non-empty list"),
    "missing image input": (
        _json([{"name": "pixels", "datatype": "UINT8", "shape": [1], "data": [1]}]),
        {},
        400,
        "unknown input 'pixels'",
    ),
    "wrong datatype": (
        _json([{"name": "image", "datatype": "FP32", "shape": [1, 8, 8], "data": [0.0] * 64}]),
        {},
        400,
        "must be BYTES",
    ),
    "unknown datatype": (
        _json([{"name": "image", "datatype": "COMPLEX", "shape": [1], "data": [1]}]),
        {},
        400,
        "unknown datatype",
    ),
    "shape/data mismatch": (_json([_uint8([1, 8, 8], [0] * 10)]), {}, 400, "needs 64"),
    "image given twice": (
        _json([_uint8([1, 8, 8], [0] * 64), _uint8([1, 8, 8], [0] * 64)]),
        {},
        400,
        "given 2 times",
    ),
    "negative shape": (_json([_uint8([-1, 8, 8], [])]), {}, 400, "non-negative integers"),
    "huge shape, no data": (_json([_uint8([1 << 20, 1 << 20, 1 << 20], [])]), {}, 400, "too many"),
    "strings as pixels": (_json([_uint8([1, 8, 8], ["a"] * 64)]), {}, 400, "string values"),
    "pixel out of range": (_json([_uint8([1, 8, 8], [300] * 64)]), {}, 400, "out of range"),
    "ragged data": (_json([_uint8([2, 2], [[1, 2], [3]])]), {}, 400, "ragged"),
    "empty batch": (_json([_uint8([0, 8, 8], [])]), {}, 400, "empty batch"),
    "tiny image": (_json([_uint8([1, 4, 4], [0] * 16)]), {}, 400, "at least 8"),
    "bad score_threshold": (
        _json([_uint8([1, 8, 8], [0] * 64)], parameters={"score_threshold": "high"}),
        {},
        400,
        "score_threshold",
    ),
    "bad max_detections": (
        _json([_uint8([1, 8, 8], [0] * 64)], parameters={"max_detections": -3}),
        {},
        400,
        "max_detections",
    ),
    "unknown output": (
        _json([_uint8([1, 8, 8], [0] * 64)], outputs=[{"name": "masks"}]),
        {},
        400,
        "unknown output 'masks'",
    ),
    "id not a string": (_json([_uint8([1, 8, 8], [0] * 64)], id=5), {}, 400, "'id'"),
    "shared memory": (
        _json(
            [
                {
                    "name": "image",
                    "datatype": "UINT8",
                    "shape": [1, 8, 8],
                    "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 64},
                }
            ]
        ),
        {},
        400,
        "shared-memory extension",
    ),
    "bad base64 image": (
        _json(
            [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": ["not base64!"],
                    "parameters": {"content_type": "base64"},
                }
            ]
        ),
        {},
        400,
        "not base64",
    ),
    "undecodable image": (*_bytes_tensor([b"GIF89a not really"]), 400, "image 0"),
    "empty image bytes": (*_bytes_tensor([b""]), 400, "empty"),
    "truncated png": (*_bytes_tensor([encode(circles_image(64, 64))[:100]]), 400, "image 0"),
    "decompression bomb": (*_bytes_tensor([_bomb_png()]), 400, "over the limit"),
    "too many pixels in one request": (
        *_bytes_tensor([_bomb_png(4000)] * 5),  # each under the per-image limit, 80 Mpx in all
        400,
        "per-request limit",
    ),
    "header length not a number": (b"{}", {HEADER: "abc"}, 400, HEADER),
    "header length past the body": (b"{}", {HEADER: "999"}, 400, HEADER),
    "binary size past the body": (
        *_binary_request(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, 8, 8],
                        "parameters": {"binary_data_size": 64},
                    }
                ]
            },
            [b"\0" * 10],
        ),
        400,
        "only 10 remain",
    ),
    "binary size disagrees with shape": (
        *_binary_request(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "UINT8",
                        "shape": [1, 8, 8],
                        "parameters": {"binary_data_size": 32},
                    }
                ]
            },
            [b"\0" * 32],
        ),
        400,
        "needs 64",
    ),
    "unclaimed binary bytes": (
        *_binary_request({"inputs": [_uint8([1, 8, 8], [0] * 64)]}, [b"junk"]),
        400,
        "no input claims",
    ),
    "truncated BYTES length prefix": (
        *_binary_request(
            {
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "parameters": {"binary_data_size": 2},
                    }
                ]
            },
            [b"\x05\x00"],
        ),
        400,
        "truncated",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_infer_requests_get_400(http, case):
    body, headers, status, phrase = CASES[case]
    response = http.post(INFER, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert phrase in error, error
    assert http.get("/v2/health/live").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "phrase"),
    [
        ("GET", "/v2/models/nope", 404, "unknown model 'nope'"),
        ("GET", "/v2/models/circle-detector/versions/999", 404, "no version '999'"),
        ("GET", "/v2/models/nope/ready", 404, "unknown model"),
        ("POST", "/v2/models/nope/infer", 404, "unknown model"),
        ("POST", "/v2/models/circle-detector/versions/999/infer", 404, "no version"),
        ("GET", INFER, 405, "Method Not Allowed"),
    ],
)
def test_unknown_model_version_and_method(http, method, path, status, phrase):
    response = http.request(method, path, content=_json([_uint8([1, 8, 8], [0] * 64)]))
    assert response.status_code == status, response.text
    assert phrase in response.json()["error"]


def test_versioned_routes_work_for_the_served_version(http):
    version = http.get("/v2/models/circle-detector").json()["versions"][0]
    base = f"/v2/models/circle-detector/versions/{version}"
    assert http.get(f"{base}/ready").json() == {"name": "circle-detector", "ready": True}
    image = circles_image(32, 32).tolist()
    response = http.post(f"{base}/infer", json={"inputs": [_uint8([1, 32, 32], image)]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == version
    assert all(v is not None for v in body.values())


def test_plain_json_infer_without_content_type(http):
    image = circles_image(40, 48, 3)
    body = _json([_uint8([1, 40, 48], image.reshape(-1).tolist())], id="plain")
    response = http.post(INFER, content=body)  # tritonclient sends no Content-Type either
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["id"] == "plain"
    assert {o["name"] for o in payload["outputs"]} == {
        "num_detections",
        "boxes",
        "centers",
        "radii",
        "scores",
    }
    counts = next(o for o in payload["outputs"] if o["name"] == "num_detections")
    assert counts["shape"] == [1] and counts["datatype"] == "INT32"


def test_binary_data_output_returns_raw_tensors(http):
    image = circles_image(48, 48, 4)
    body = _json(
        [_uint8([1, 48, 48], image.tolist())],
        parameters={"binary_data_output": True, "score_threshold": 0.0},
    )
    response = http.post(INFER, content=body)
    assert response.status_code == 200, response.text
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sum(sizes) == len(response.content) - length
    first = header["outputs"][0]
    assert first["name"] == "num_detections"
    count = np.frombuffer(response.content[length : length + sizes[0]], dtype="<i4")
    assert count.shape == (1,)


def test_json_bytes_images_as_base64(http):
    """JSON cannot carry raw PNG bytes; `content_type: base64` (as MLServer) carries files."""
    images = [circles_image(64, 64, 5), circles_image(80, 64, 6)]
    body = _json(
        [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(encode(i)).decode() for i in images],
                "parameters": {"content_type": "base64"},
            }
        ],
        parameters=LOOSE,
    )
    response = http.post(INFER, content=body)
    assert response.status_code == 200, response.text
    outputs = {
        o["name"]: np.array(o["data"], dtype=np.float32).reshape(o["shape"])
        for o in response.json()["outputs"]
    }
    assert_matches_reference(outputs, reference(images, **LOOSE))
