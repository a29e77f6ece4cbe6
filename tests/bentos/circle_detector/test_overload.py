"""Overload and deadlines on a real standalone Bento: past its bounded queue a request is
refused at once with 429 + Retry-After JSON (gRPC RESOURCE_EXHAUSTED), never a 500, while the
server stays live, and every refusal is counted in /metrics; the `timeout` parameter refuses a
request that cannot make it (503 as Triton, gRPC DEADLINE_EXCEEDED); bad `priority`/`timeout`
values are 400 naming the parameter.

The server: one image per batch and at most 4 images queued, so that a burst of 4-image
requests overfills the queue whenever one of them is still waiting; a 60 s latency budget, so
that every refusal is the bounded queue's own (not the latency backstop's).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time

import httpx
import numpy as np
import pytest
import tritonclient.grpc.aio as grpc_aio
import tritonclient.http.aio as http_aio
from tritonclient.utils import InferenceServerException

from tests.bentos.circle_detector.images import circles_image, encode
from tests.servers import running_bento

MODEL = "circle-detector"
BURST = 24
IMAGES = 4
PNGS = [encode(circles_image(256, 256, seed)) for seed in range(IMAGES)]
_REFUSALS = re.compile(r'^circle_detector_refusals_total\{reason="(\w+)"\} (\S+)$', re.M)


@pytest.fixture(scope="module")
def server(bentoml_home):
    env = {
        "CIRCLE_DETECTOR_MAX_QUEUE_SIZE": "4",
        "CIRCLE_DETECTOR_MAX_BATCH_SIZE": "1",
        "CIRCLE_DETECTOR_MAX_LATENCY_MS": "60000",
    }
    with running_bento(bentoml_home, env=env, standalone=True) as server:
        yield server


def body(parameters: dict | None = None, images: int = IMAGES) -> dict:
    """A JSON infer request: `images` PNGs as base64 text in BYTES (KServe's convention)."""
    data = [base64.b64encode(png).decode() for png in PNGS[:images]]
    doc: dict = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [images], "data": data}]
    }
    if parameters is not None:
        doc["parameters"] = parameters
    return doc


async def refusals(client: httpx.AsyncClient, server) -> dict[str, float]:
    text = (await client.get(server.metrics_url)).text
    return {reason: float(value) for reason, value in _REFUSALS.findall(text)}


async def _probe_live(client: httpx.AsyncClient, url: str, stop: asyncio.Event) -> list[int]:
    statuses = []
    while not stop.is_set():
        statuses.append((await client.get(f"{url}/v2/health/live", timeout=5)).status_code)
        await asyncio.sleep(0.02)
    return statuses


async def test_rest_past_the_queue_is_429_with_retry_after_counted_and_live(server):
    url = f"{server.base_url}/v2/models/{MODEL}/infer"
    async with httpx.AsyncClient(timeout=60) as client:
        before = await refusals(client, server)
        stop = asyncio.Event()
        probe = asyncio.create_task(_probe_live(client, server.base_url, stop))
        responses = await asyncio.gather(*(client.post(url, json=body()) for _ in range(BURST)))
        stop.set()
        live = await probe
        after = await refusals(client, server)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429}, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert refused, f"a 4-image queue should refuse some of {BURST} 4-image requests"
    assert 200 in statuses
    for r in refused:
        assert r.headers["content-type"] == "application/json"
        assert "queue holds" in r.json()["error"] and "retry later" in r.json()["error"]
        assert int(r.headers["retry-after"]) >= 1
    served = next(r for r in responses if r.status_code == 200).json()
    assert served["outputs"][0]["shape"] == [IMAGES]
    assert live and set(live) == {200}, live
    assert after["queue_full"] - before.get("queue_full", 0) == len(refused)
    assert after.get("latency_budget", 0) == before.get("latency_budget", 0)


async def test_grpc_past_the_queue_is_resource_exhausted_counted_and_live(server):
    batch = np.array(PNGS, dtype=object)

    async def call(client: grpc_aio.InferenceServerClient) -> object:
        tensor = grpc_aio.InferInput("image", [IMAGES], "BYTES")
        tensor.set_data_from_numpy(batch)
        return await client.infer(MODEL, [tensor])

    async with httpx.AsyncClient(timeout=60) as http:
        before = await refusals(http, server)
        async with grpc_aio.InferenceServerClient(server.grpc_url) as client:
            results = await asyncio.gather(
                *(call(client) for _ in range(BURST)), return_exceptions=True
            )
            assert await client.is_server_live()
        after = await refusals(http, server)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors and len(errors) < BURST, f"{len(errors)} of {BURST} refused"
    assert all(isinstance(e, InferenceServerException) for e in errors), errors[:2]
    assert {e.status() for e in errors} == {"StatusCode.RESOURCE_EXHAUSTED"}, errors[:2]
    assert all("queue holds" in e.message() for e in errors), errors[:2]
    assert after["queue_full"] - before.get("queue_full", 0) == len(errors)


def one_image(transport) -> object:
    """One PNG as a BYTES tensor of tritonclient's `transport` module (HTTP or gRPC aio)."""
    tensor = transport.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(PNGS[:1], dtype=object))
    return tensor


async def refused_then_served(client, transport, priority: int) -> InferenceServerException:
    """A 1 µs timeout refused (the error returned); 10 s, at `priority`, served."""
    with pytest.raises(InferenceServerException, match="timeout expired") as refused:
        await client.infer(MODEL, [one_image(transport)], timeout=1)
    served = await client.infer(
        MODEL, [one_image(transport)], timeout=10_000_000, priority=priority
    )
    assert served.as_numpy("num_detections").shape == (1,)
    return refused.value


async def test_a_timeout_that_cannot_be_met_is_refused_and_a_generous_one_is_served(server):
    """1 µs passes before the images are even decoded: refused, never run, over both
    transports (tritonclient's own `timeout=` argument); 10 s is served."""
    async with httpx.AsyncClient(timeout=60) as http:
        before = await refusals(http, server)
        async with http_aio.InferenceServerClient(server.http_url) as rest:
            assert (await refused_then_served(rest, http_aio, 1)).status() == "503"
        async with grpc_aio.InferenceServerClient(server.grpc_url) as grpc:
            error = await refused_then_served(grpc, grpc_aio, 9)
            assert error.status() == "StatusCode.DEADLINE_EXCEEDED"
        after = await refusals(http, server)
    assert after["deadline"] - before.get("deadline", 0) == 2


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"priority": -1}, "priority"),
        ({"priority": 10}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 10**30}, "timeout"),
        ({"timeout": 2.5}, "timeout"),
        ({"timeout": "1000"}, "timeout"),
    ],
)
async def test_bad_priority_or_timeout_is_400_naming_it(server, parameters, named):
    url = f"{server.base_url}/v2/models/{MODEL}/infer"
    async with httpx.AsyncClient(timeout=60) as client:
        started = time.perf_counter()
        response = await client.post(url, json=body(parameters, images=1))
    assert response.status_code == 400, response.text
    assert f"parameter '{named}'" in response.json()["error"]
    assert time.perf_counter() - started < 10


async def test_bad_priority_over_grpc_is_invalid_argument(server):
    async with grpc_aio.InferenceServerClient(server.grpc_url) as client:
        with pytest.raises(InferenceServerException, match="parameter 'priority'") as bad:
            await client.infer(MODEL, [one_image(grpc_aio)], priority=99)
    assert bad.value.status() == "StatusCode.INVALID_ARGUMENT"
