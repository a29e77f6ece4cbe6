"""The admission budget and the codecs' limits, in-process: what bounds memory before a
request is materialised."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from bentos.circle_detector.admission import Budget
from bentos.circle_detector.grpc import codec as grpc_codec
from bentos.circle_detector.protocol import BadRequest, Busy, Limits, PayloadTooLarge
from bentos.circle_detector.rest.codec import parse_request
from tests.bentos.circle_detector.abuse import binary_bytes_body, typed_uint_message


async def test_budget_waits_for_room_then_admits():
    released: list[int] = []
    budget = Budget("bytes", 100, timeout_s=5, on_release=released.append)
    order: list[str] = []

    async def first() -> None:
        async with budget.hold(80):
            order.append("first in")
            await asyncio.sleep(0.1)
        order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.01)
        async with budget.hold(50):
            order.append("second in")
            assert budget.in_use == 50

    await asyncio.gather(first(), second())
    assert order == ["first in", "first out", "second in"]
    assert released == [80, 50] and budget.in_use == 0


async def test_budget_refuses_after_the_timeout_and_caps_big_requests():
    budget = Budget("pixels", 100, timeout_s=0.05)
    async with budget.hold(10**9) as held:  # more than the whole budget: runs alone
        assert held == 100
        started = time.perf_counter()
        with pytest.raises(Busy, match="pixels budget"):
            async with budget.hold(1):
                pass
        assert 0.04 < time.perf_counter() - started < 1
    assert budget.in_use == 0
    assert Busy.http_status == 429 and Busy.retry_after_s and Busy.grpc_code == "RESOURCE_EXHAUSTED"


def test_bytes_elements_stop_at_the_shape():
    """A million 1-byte elements behind shape [2]: refused after 3 of them, not a million."""
    body, header = binary_bytes_body([2], (struct.pack("<I", 1) + b"a") * 1_000_000)
    started = time.perf_counter()
    with pytest.raises(BadRequest, match="more than 2 elements"):
        parse_request(body, header)
    assert time.perf_counter() - started < 0.05
    with pytest.raises(BadRequest, match="over the limit of 64"):
        parse_request(*binary_bytes_body([1_000_000], b""), Limits(max_bytes_elements=64))


def test_json_limits():
    limits = Limits(max_json_bytes=1024)
    doc = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["a" * 2000]}]}
    with pytest.raises(PayloadTooLarge, match="JSON request body"):
        parse_request(json.dumps(doc).encode(), None, limits)
    with pytest.raises(PayloadTooLarge, match="JSON header"):
        parse_request(b"{}" + b"x" * 4096, "2048", limits)
    doc["inputs"][0].update(shape=[100], data=["a"] * 100)
    with pytest.raises(BadRequest, match="over the limit of 8"):
        parse_request(json.dumps(doc).encode(), None, Limits(max_bytes_elements=8))


def test_typed_contents_are_checked_on_the_wire_and_by_count():
    limits = Limits(max_typed_elements=1000)
    with pytest.raises(BadRequest, match="outside raw_input_contents"):
        grpc_codec.parse_message(typed_uint_message([1, 1200, 1000]), limits)
    message = grpc_codec.parse_message(typed_uint_message([1, 40, 30]), limits)
    with pytest.raises(BadRequest, match="over the limit of 1000"):
        grpc_codec.parse_request(message, limits)
    parsed = grpc_codec.parse_request(message)
    assert parsed.inputs[0].data.dtype == np.uint8 and parsed.inputs[0].data.shape == (1, 40, 30)
    with pytest.raises(BadRequest, match="not a valid ModelInferRequest"):
        grpc_codec.parse_message(b"\x0a\xff\xff\xff")


def test_a_message_of_countless_tiny_fields_is_sized_at_once_and_refused():
    """8 MiB of 2-byte unknown fields: the walk stops after MAX_TOP_LEVEL_FIELDS (it runs on
    the event loop), the rest counts as typed, and the message is refused unparsed."""
    data = bytes([15 << 3, 1]) * (4 * 1024 * 1024)
    started = time.perf_counter()
    raw, cost = grpc_codec.wire_sizes(data)
    assert time.perf_counter() - started < 0.5
    assert raw == 0 and cost == 8 * len(data)
    with pytest.raises(BadRequest, match="outside raw_input_contents"):
        grpc_codec.parse_message(data)


def test_wire_sizes_count_raw_contents_once():
    message = service_pb2.ModelInferRequest(model_name="circle-detector")
    message.inputs.add(name="image", datatype="UINT8", shape=[1, 100, 100])
    message.raw_input_contents.append(b"\x00" * 10_000)
    data = message.SerializeToString()
    raw, cost = grpc_codec.wire_sizes(data)
    assert raw == 10_000 and cost == 2 * raw + 8 * (len(data) - raw)
