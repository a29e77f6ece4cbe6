"""The V2 client (tritonclient aio, HTTP and gRPC) against a real `bentoml serve` of the Bento.

The committed weights may be an untrained placeholder, so nothing here expects particular
circles: the client's result must equal what the V2 server returns to a direct call.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.http as httpclient

from backend.config import Protocol, Settings
from backend.inference import ModelMisconfiguredError, ModelRejectedError, ModelUnavailableError
from backend.inference.v2 import OUTPUTS, V2Client, parse_circles
from tests.backend.helpers import circles_png
from tests.servers import free_port

LOOSE = {"score_threshold": 0.0, "max_detections": 20}


def direct_v2(http_url: str, data: bytes, **params) -> dict[str, np.ndarray]:
    """The same request made with the synchronous tritonclient, as a reference."""
    client = httpclient.InferenceServerClient(http_url)
    try:
        image = httpclient.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
        result = client.infer("circle-detector", [image], parameters=params)
        return {name: result.as_numpy(name) for name in OUTPUTS}
    finally:
        client.close()


def client_for(server, protocol: Protocol) -> V2Client:
    url = server.grpc_url if protocol == Protocol.GRPC else server.http_url
    return V2Client(Settings(model_server_url=url, model_protocol=protocol, model_timeout_s=30))


@pytest.mark.parametrize("protocol", [Protocol.HTTP, Protocol.GRPC])
async def test_client_result_equals_a_direct_v2_call(bento_server, protocol):
    client = client_for(bento_server, protocol)
    try:
        await client.ready()
        for seed in (1, 2):
            data = circles_png(seed=seed, size=(200, 150))
            result = await client.infer(data, width=200, height=150, **LOOSE)
            expected = parse_circles(direct_v2(bento_server.http_url, data, **LOOSE))
            assert len(result.circles) == len(expected) <= 20
            for got, want in zip(result.circles, expected, strict=True):
                assert got.cx == pytest.approx(want.cx, abs=1e-3)
                assert got.cy == pytest.approx(want.cy, abs=1e-3)
                assert got.radius == pytest.approx(want.radius, abs=1e-3)
                assert got.score == pytest.approx(want.score, abs=1e-5)
            assert result.model_name == "circle-detector"
            assert result.model_version
            assert result.inference_ms > 0
    finally:
        await client.close()


async def test_model_version_matches_the_servers_metadata(bento_server):
    meta = httpclient.InferenceServerClient(bento_server.http_url).get_model_metadata(
        "circle-detector"
    )
    client = client_for(bento_server, Protocol.HTTP)
    try:
        result = await client.infer(circles_png(seed=3), width=160, height=120, **LOOSE)
    finally:
        await client.close()
    assert result.model_version == str(meta["versions"][-1])


async def test_parameters_reach_the_model(bento_server):
    client = client_for(bento_server, Protocol.HTTP)
    data = circles_png(seed=4, size=(200, 150))
    try:
        size = {"width": 200, "height": 150}
        loose = await client.infer(data, **size, **LOOSE)
        capped = await client.infer(data, **size, score_threshold=0, max_detections=1)
        strict = await client.infer(data, **size, score_threshold=1.0, max_detections=5)
    finally:
        await client.close()
    assert capped.circles == loose.circles[:1]
    assert all(c.score >= 1.0 for c in strict.circles)


@pytest.mark.parametrize("protocol", [Protocol.HTTP, Protocol.GRPC])
async def test_a_refused_image_is_a_rejection_not_a_retry(bento_server, protocol):
    client = client_for(bento_server, protocol)
    try:
        with pytest.raises(ModelRejectedError):
            await client.infer(b"not an image at all", width=8, height=8, **LOOSE)
    finally:
        await client.close()


@pytest.mark.parametrize("protocol", [Protocol.HTTP, Protocol.GRPC])
async def test_an_unreachable_server_is_unavailable_quickly(protocol):
    settings = Settings(
        model_server_url=f"127.0.0.1:{free_port()}", model_protocol=protocol, model_timeout_s=5
    )
    client = V2Client(settings)
    start = time.monotonic()
    try:
        with pytest.raises(ModelUnavailableError, match=r"127\.0\.0\.1"):
            await client.infer(circles_png(seed=5), width=160, height=120, **LOOSE)
        with pytest.raises(ModelUnavailableError):
            await client.ready()
    finally:
        await client.close()
    assert time.monotonic() - start < 12


@pytest.mark.parametrize("protocol", [Protocol.HTTP, Protocol.GRPC])
async def test_unknown_model_is_a_misconfiguration(bento_server, protocol):
    """A wrong MODEL_NAME fails at once (no retry to the deadline); readiness says why."""
    url = bento_server.grpc_url if protocol == Protocol.GRPC else bento_server.http_url
    settings = Settings(model_server_url=url, model_protocol=protocol, model_name="no-such")
    client = V2Client(settings)
    try:
        with pytest.raises(ModelMisconfiguredError, match="MODEL_NAME='no-such'"):
            await client.infer(circles_png(seed=6), width=160, height=120, **LOOSE)
        with pytest.raises(ModelMisconfiguredError):
            await client.ready()
    finally:
        await client.close()


def test_parse_circles_ignores_padding_and_checks_shapes():
    outputs = {
        "num_detections": np.array([1], dtype=np.int32),
        "boxes": np.array([[[0, 0, 4, 4], [0, 0, 0, 0]]], dtype=np.float32),
        "centers": np.array([[[2, 2], [0, 0]]], dtype=np.float32),
        "radii": np.array([[2, 0]], dtype=np.float32),
        "scores": np.array([[0.9, 0]], dtype=np.float32),
    }
    circles = parse_circles(outputs)
    assert len(circles) == 1 and circles[0].radius == 2 and circles[0].score == pytest.approx(0.9)
    with pytest.raises(ModelRejectedError, match="shapes"):
        parse_circles({**outputs, "radii": np.zeros((1, 3), dtype=np.float32)})
    with pytest.raises(ModelRejectedError, match="shapes"):
        parse_circles({**outputs, "num_detections": np.array([5], dtype=np.int32)})
    with pytest.raises(ModelRejectedError, match="lacks"):
        parse_circles({**outputs, "scores": None})
