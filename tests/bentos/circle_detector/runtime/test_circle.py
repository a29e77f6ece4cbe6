"""The circle runtime in-process: its pixel limits, checked before decoding; warm-ups left out
of /metrics as of the statistics."""

from __future__ import annotations

import re

import numpy as np
import pytest
from prometheus_client import REGISTRY

from bentos.circle_detector.protocol import BadRequest, InferInput, InferRequest
from bentos.circle_detector.runtime.circle import CircleRuntime
from tests.bentos.circle_detector.images import circles_image, encode, reference_detector


async def test_pixel_arrays_over_the_pixel_limit_are_refused():
    plane = CircleRuntime(reference_detector(), max_pixels=32 * 32)
    try:
        await plane.warm_up()  # the warm-up image itself fits the small limit
        big = np.zeros((1, 40, 40), dtype=np.uint8)
        request = InferRequest(inputs=[InferInput("image", "UINT8", [1, 40, 40], big)])
        with pytest.raises(BadRequest, match="over the limit of 1024"):
            await plane.infer(request)
    finally:
        await plane.close()


async def test_request_pixel_budget_is_checked_from_headers_before_decoding():
    plane = CircleRuntime(reference_detector(), max_pixels=64 * 64, max_request_pixels=3000)
    try:
        await plane.warm_up()
        files = np.array([encode(circles_image(40, 40, s)) for s in (1, 2)], dtype=object)
        request = InferRequest(inputs=[InferInput("image", "BYTES", [2], files)])
        with pytest.raises(BadRequest, match="3200 pixels in all, over the per-request limit"):
            await plane.infer(request)
        pixels = np.zeros((2, 40, 40), dtype=np.uint8)
        request = InferRequest(inputs=[InferInput("image", "UINT8", [2, 40, 40], pixels)])
        with pytest.raises(BadRequest, match="per-request limit of 3000"):
            await plane.infer(request)
        one = InferRequest(inputs=[InferInput("image", "BYTES", [1], files[:1])])
        assert (await plane.infer(one)).outputs
    finally:
        await plane.close()


def _observed() -> dict[str, float]:
    """Observations so far of each stage histogram and of the batch-size histogram."""
    counts = {
        stage: REGISTRY.get_sample_value("circle_detector_stage_seconds_count", {"stage": stage})
        for stage in ("prepare", "queue", "network", "finish")
    }
    counts["batches"] = REGISTRY.get_sample_value("circle_detector_batch_size_count")
    return {k: v or 0.0 for k, v in counts.items()}


async def test_warm_ups_are_left_out_of_the_metrics_and_requests_are_counted():
    plane = CircleRuntime(reference_detector())
    try:
        before = _observed()
        await plane.warm_up()
        await plane.warm_up(full_size=True)
        assert _observed() == before
        pixels = np.zeros((2, 40, 40), dtype=np.uint8)
        await plane.infer(InferRequest(inputs=[InferInput("image", "UINT8", [2, 40, 40], pixels)]))
        after = _observed()
        for stage in ("prepare", "queue", "finish"):
            assert after[stage] - before[stage] == 2  # per image
        assert after["network"] - before["network"] == after["batches"] - before["batches"] >= 1
    finally:
        await plane.close()


@pytest.mark.parametrize(
    ("shape", "datatype", "phrase"),
    [
        ([10**9], "BYTES", "the limit is 64"),  # claims a billion images
        ([0], "BYTES", "empty batch"),
        ([], "BYTES", "empty batch"),
        ([1, 8], "BYTES", "must have shape [N]"),
        ([3, 8, 8], "FP32", "must be BYTES"),
    ],
)
async def test_hostile_image_counts_are_400_and_hold_no_room(shape, datatype, phrase):
    """Admission counts the images a request claims before it is checked: whatever the claim,
    the request is a 400 naming the problem and gives its room back (a 1-image limit that a
    held slot would fill)."""
    plane = CircleRuntime(reference_detector(), max_in_flight=1)
    try:
        await plane.warm_up()
        data = np.zeros(0, dtype=object)
        request = InferRequest(inputs=[InferInput("image", datatype, shape, data)])
        for _ in range(2):
            with pytest.raises(BadRequest, match=re.escape(phrase)):
                await plane.infer(request)
            assert plane.in_flight.in_flight == 0
        one = np.array([encode(circles_image(40, 40, 1))], dtype=object)
        assert await plane.infer(InferRequest(inputs=[InferInput("image", "BYTES", [1], one)]))
    finally:
        await plane.close()
