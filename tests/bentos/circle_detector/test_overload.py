"""Overload: when the batcher refuses requests (its bounded queue full, or a queue wait over
CIRCLE_DETECTOR_MAX_LATENCY_MS), clients get 429 + Retry-After / RESOURCE_EXHAUSTED with a
message, never a 500, and the server stays live."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import tritonclient.grpc.aio as grpc_aio

from tests.bentos.circle_detector.images import circles_image
from tests.servers import running_bento


@pytest.fixture(scope="module")
def impatient_server(bentoml_home):
    env = {"CIRCLE_DETECTOR_MAX_LATENCY_MS": "1", "CIRCLE_DETECTOR_MAX_BATCH_SIZE": "2"}
    with running_bento(bentoml_home, env=env, standalone=True) as server:
        yield server


async def test_refused_requests_are_429_not_500(impatient_server):
    image = circles_image(256, 256, 71)
    body = {
        "inputs": [
            {"name": "image", "datatype": "UINT8", "shape": [1, 256, 256], "data": image.tolist()}
        ]
    }
    url = f"{impatient_server.base_url}/v2/models/circle-detector/infer"
    async with httpx.AsyncClient(timeout=60) as client:
        responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(24)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, statuses
        assert 429 in statuses, "a queue of 2 images should refuse some of 24 concurrent calls"
        refused = [r for r in responses if r.status_code == 429]
        assert all("overloaded" in r.json()["error"] for r in refused)
        assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
        assert (await client.get(f"{impatient_server.base_url}/v2/health/live")).status_code == 200

    async with grpc_aio.InferenceServerClient(impatient_server.grpc_url) as client:
        batch = image[None]

        async def call():
            tensor = grpc_aio.InferInput("image", list(batch.shape), "UINT8")
            tensor.set_data_from_numpy(batch)
            return await client.infer("circle-detector", [tensor])

        results = await asyncio.gather(*(call() for _ in range(24)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors, "some gRPC calls should be dropped too"
    assert all(e.status() == "StatusCode.RESOURCE_EXHAUSTED" for e in errors), errors[:2]
    assert "overloaded" in errors[0].message()
