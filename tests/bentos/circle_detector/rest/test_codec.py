"""REST body decoding: compression (and zip bombs), binary extension framing."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest

from bentos.circle_detector.protocol import BadRequest, PayloadTooLarge
from bentos.circle_detector.rest.codec import decode_body, parse_request


def test_gzip_and_deflate_round_trip():
    body = b'{"inputs": []}' * 10
    assert decode_body(gzip.compress(body), "gzip", 1 << 20) == body
    assert decode_body(zlib.compress(body), "Deflate", 1 << 20) == body
    assert decode_body(body, None, 1 << 20) == body
    assert decode_body(body, "identity", 1 << 20) == body


def test_zip_bomb_is_refused_before_it_is_inflated():
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 MiB of zeros in about 8 kB
    assert len(bomb) < 64 << 10
    with pytest.raises(PayloadTooLarge, match="over the limit of 1048576"):
        decode_body(bomb, "gzip", 1 << 20)


@pytest.mark.parametrize(
    ("body", "encoding", "phrase"),
    [
        (b"plain text", "gzip", "not valid gzip"),
        (gzip.compress(b"x" * 1000)[:20], "gzip", "truncated"),
        (b"{}", "br", "unsupported Content-Encoding"),
    ],
)
def test_bad_encodings(body, encoding, phrase):
    with pytest.raises(BadRequest, match=phrase):
        decode_body(body, encoding, 1 << 20)


def test_binary_extension_framing():
    raw = np.arange(64, dtype=np.uint8).tobytes()
    header = {
        "id": "x",
        "inputs": [
            {
                "name": "image",
                "datatype": "UINT8",
                "shape": [1, 8, 8],
                "parameters": {"binary_data_size": 64},
            }
        ],
        "outputs": [{"name": "scores", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode()
    request = parse_request(head + raw, str(len(head)))
    assert request.id == "x"
    np.testing.assert_array_equal(request.inputs[0].data.reshape(-1), np.arange(64))
    assert request.outputs[0].name == "scores" and request.outputs[0].binary is True
