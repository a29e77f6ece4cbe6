"""The dataplane and the REST app in-process (httpx's ASGI transport, no BentoML): readiness
gating, model lookup and equality with the model."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from bentos.circle_detector import rest
from bentos.circle_detector.dataplane import DataPlane
from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.protocol import InferInput, InferRequest, NotFound, NotReady
from bentos.circle_detector.runtime.circle import CircleRuntime
from tests.bentos.circle_detector.images import (
    LOOSE,
    assert_matches_reference,
    circles_image,
    encode,
    hot_checkpoint,
    reference,
    reference_detector,
)


@pytest.fixture
async def dataplane():
    plane = DataPlane.serving(CircleRuntime(reference_detector(), threads=2))
    yield plane
    await plane.close()


async def test_not_ready_until_warmed_up(dataplane):
    app = rest.create_app()
    app.state.dataplane = dataplane
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/v2/health/live")).status_code == 200
        ready = await client.get("/v2/health/ready")
        assert ready.status_code == 503 and "warming up" in ready.json()["error"]
        assert (await client.get("/v2/models/circle-detector/ready")).status_code == 503
        body = {
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 8, 8], "data": [0] * 64}]
        }
        infer = await client.post("/v2/models/circle-detector/infer", json=body)
        assert infer.status_code == 503 and "not ready" in infer.json()["error"]
        await dataplane.warm_up()
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        infer = await client.post("/v2/models/circle-detector/infer", json=body)
        assert infer.status_code == 200, infer.text


async def test_no_dataplane_yet_is_503():
    transport = httpx.ASGITransport(app=rest.create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/v2/health/ready")
    assert response.status_code == 503 and "loading" in response.json()["error"]


async def test_infer_equals_the_model(dataplane):
    await dataplane.warm_up()
    images = np.stack([circles_image(64, 64, s) for s in (21, 22, 23)])
    request = InferRequest(
        inputs=[InferInput("image", "UINT8", list(images.shape), images)], parameters=LOOSE
    )
    response = await dataplane.infer("circle-detector", request)
    outputs = {o.name: o.data for o in response.outputs}
    assert_matches_reference(outputs, reference(list(images), **LOOSE))


async def test_uneven_counts_are_zero_padded_and_equal_the_model(tmp_path):
    detector = CircleDetector.load(hot_checkpoint(tmp_path / "hot.pt"))
    plane = DataPlane.serving(CircleRuntime(detector, threads=2))
    try:
        await plane.warm_up()
        images = [circles_image(64, 64, 24), circles_image(96, 80, 25)]
        tensor = np.array([encode(i) for i in images], dtype=object)
        params = {"score_threshold": 0.0, "max_detections": 7}
        request = InferRequest(
            inputs=[InferInput("image", "BYTES", [2], tensor)], parameters=params
        )
        outputs = {o.name: o.data for o in (await plane.infer("circle-detector", request)).outputs}
    finally:
        await plane.close()
    expected = detector.detect_arrays(images, 0.0, 7)
    assert max(len(e) for e in expected) > 0, "the hot detector must report candidates"
    assert_matches_reference(outputs, expected)


async def test_infer_before_warm_up_raises_not_ready(dataplane):
    request = InferRequest(inputs=[InferInput("image", "UINT8", [1, 8, 8], np.zeros((1, 8, 8)))])
    with pytest.raises(NotReady):
        await dataplane.infer("circle-detector", request)


async def test_body_over_the_limit_is_413(dataplane):
    await dataplane.warm_up()
    app = rest.create_app()
    app.state.dataplane = dataplane
    app.state.max_body_bytes = 1024
    transport = httpx.ASGITransport(app=app)
    url = "/v2/models/circle-detector/infer"
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        declared = await client.post(url, content=b"x" * 2048)
        assert declared.status_code == 413 and "limit is 1024" in declared.json()["error"]

        async def chunks():
            for _ in range(4):
                yield b"y" * 512

        streamed = await client.post(url, content=chunks())  # no Content-Length: chunked
        assert streamed.status_code == 413 and "over the limit" in streamed.json()["error"]


async def test_unknown_model_or_version_names_what_is_served(dataplane):
    await dataplane.warm_up()
    request = InferRequest(inputs=[InferInput("image", "UINT8", [1, 8, 8], np.zeros((1, 8, 8)))])
    with pytest.raises(NotFound, match="unknown model 'nope'; this server serves 'circle-"):
        await dataplane.infer("nope", request)
    version = dataplane.model_metadata("circle-detector")["versions"][-1]
    with pytest.raises(NotFound, match=f"has no version 'x'; available: '{version}'"):
        dataplane.model_metadata("circle-detector", "x")
    assert dataplane.model_ready("circle-detector", version)
