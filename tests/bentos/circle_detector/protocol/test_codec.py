"""Tensor codec round trips and refusals (pure functions, no server)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bentos.circle_detector.protocol import BadRequest, codec


@pytest.mark.parametrize("datatype", ["UINT8", "UINT16", "INT32", "INT64", "FP32", "FP64", "BOOL"])
def test_binary_round_trip(datatype):
    dtype = codec.DATATYPES[datatype]
    arr = (np.arange(24) % 2).astype(dtype).reshape(2, 3, 4)
    raw = codec.to_binary(datatype, arr)
    back = codec.from_binary("t", datatype, [2, 3, 4], raw)
    np.testing.assert_array_equal(back, arr)


def test_json_nested_and_flat_agree():
    nested = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    flat = [1, 2, 3, 4, 5, 6, 7, 8]
    a = codec.from_json("t", "UINT8", [2, 2, 2], nested, {})
    b = codec.from_json("t", "UINT8", [2, 2, 2], flat, {})
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8


def test_bytes_binary_and_base64_json():
    items = [b"\x89PNG\x00\xff", b""]
    raw = b"".join(struct.pack("<I", len(i)) + i for i in items)
    assert codec.from_binary("t", "BYTES", [2], raw).tolist() == items
    assert codec.to_binary("BYTES", np.array(items, dtype=object)) == raw
    decoded = codec.from_json("t", "BYTES", [1], ["iVBORw=="], {"content_type": "base64"})
    assert decoded[0] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("UINT8", [2], [1.5, 2]), "float values"),
        (("INT8", [1], [200]), "out of range"),
        (("BOOL", [1], [1]), "integer values"),
        (("FP32", [1], [{"a": 1}]), "non-numeric"),
        (("BYTES", [1], [3]), "must be strings"),
        (("BYTES", [1], ["a", "b"]), "needs 1"),
    ],
)
def test_json_refusals(args, phrase):
    with pytest.raises(BadRequest, match=phrase):
        codec.from_json("t", *args, {})


def test_deep_nesting_is_refused_not_a_crash():
    deep: list = ["x"]
    for _ in range(100):
        deep = [deep]
    with pytest.raises(BadRequest, match="nested too deeply"):
        codec.from_json("t", "BYTES", [1], deep, {})


def test_bytes_length_prefix_overrun():
    with pytest.raises(BadRequest, match="claims 100 bytes"):
        codec.from_binary("t", "BYTES", [1], struct.pack("<I", 100) + b"abc")
