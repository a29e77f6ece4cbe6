"""The circle runtime in-process: its pixel limits, checked before decoding."""

from __future__ import annotations

import numpy as np
import pytest

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
