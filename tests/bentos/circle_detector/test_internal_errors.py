"""Unexpected errors: REST 500 `{"error": "internal error", "request_id": ...}` and gRPC
INTERNAL with a generic message, the exception's text only in the log, under the request id.

The fault is a network call that raises (the batcher's run function replaced), in a real
dataplane served in-process: REST through httpx's ASGI transport, gRPC on a real port with
tritonclient's asyncio client.
"""

from __future__ import annotations

import base64
import json
import logging

import httpx
import numpy as np
import pytest
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from bentos.circle_detector import grpc as grpc_transport
from bentos.circle_detector import rest
from bentos.circle_detector.dataplane import DataPlane
from bentos.circle_detector.runtime.circle import CircleRuntime
from tests.bentos.circle_detector.images import circles_image, encode, reference_detector

SECRET = "secret detail of the failure"


def _boom(batch):
    raise RuntimeError(SECRET)


@pytest.fixture
async def broken_dataplane():
    runtime = CircleRuntime(reference_detector(), threads=1)
    plane = DataPlane.serving(runtime)
    await plane.warm_up()
    runtime.batcher._run_batch = _boom  # the network fails from now on
    yield plane
    await plane.close()


def _body() -> bytes:
    image = encode(circles_image(64, 64, 1))
    data = [base64.b64encode(image).decode()]
    return json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": data,
                    "parameters": {"content_type": "base64"},
                }
            ]
        }
    ).encode()


async def test_rest_500_is_generic_with_a_logged_request_id(broken_dataplane, caplog):
    app = rest.create_app()
    app.state.dataplane = broken_dataplane
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    url = "/v2/models/circle-detector/infer"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with caplog.at_level(logging.ERROR):
            given = await client.post(url, content=_body(), headers={"X-Request-Id": "req-42"})
            generated = await client.post(url, content=_body())
    assert given.status_code == 500
    assert given.json() == {"error": "internal error", "request_id": "req-42"}
    assert given.headers["x-request-id"] == "req-42"
    assert generated.status_code == 500 and SECRET not in generated.text
    request_id = generated.json()["request_id"]
    assert len(request_id) == 32
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "request id req-42" in logged and f"request id {request_id}" in logged
    assert SECRET in logged


async def test_grpc_internal_is_generic_with_a_logged_request_id(broken_dataplane, caplog):
    server, port = await grpc_transport.start_server(broken_dataplane, "127.0.0.1", 0)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        tensor = grpcclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([encode(circles_image(64, 64, 1))], dtype=object))
        with caplog.at_level(logging.ERROR), pytest.raises(InferenceServerException) as raised:
            await client.infer("circle-detector", [tensor], request_id="grpc-7")
    finally:
        await client.close()
        await server.stop(None)
    assert raised.value.status() == "StatusCode.INTERNAL"
    assert raised.value.message() == "internal error (request id grpc-7)"
    records = [r for r in caplog.records if "request id grpc-7" in r.getMessage()]
    assert records and SECRET in str(records[0].exc_info[1])
