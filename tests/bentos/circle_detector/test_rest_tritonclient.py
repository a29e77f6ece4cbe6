"""V2 REST through tritonclient's HTTP clients (sync and aio) against a real `bentoml serve`."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient

from tests.bentos.circle_detector.images import (
    LOOSE,
    assert_matches_reference,
    circles_image,
    encode,
    reference,
)

MODEL = "circle-detector"
OUTPUT_NAMES = ["num_detections", "boxes", "centers", "radii", "scores"]


def _bytes_input(files: list[bytes], binary: bool) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=object), binary_data=binary)
    return tensor


def _outputs(result) -> dict[str, np.ndarray]:
    return {name: result.as_numpy(name) for name in OUTPUT_NAMES}


@pytest.fixture(scope="module")
def client(bento_server):
    with httpclient.InferenceServerClient(bento_server.http_url) as c:
        yield c


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    meta = client.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata(MODEL)
    version = model["versions"][0]
    assert client.get_model_metadata(MODEL, version)["name"] == MODEL
    assert [o["name"] for o in model["outputs"]] == OUTPUT_NAMES
    assert model["inputs"][0]["name"] == "image"


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_images_of_mixed_sizes_match_the_model(client, binary):
    images = [circles_image(64, 80, 1), circles_image(120, 96, 2, channels=3)]
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUT_NAMES]
    # JSON BYTES must be UTF-8 strings, so encoded files travel binary; outputs honour `binary`.
    result = client.infer(
        MODEL,
        [_bytes_input([encode(i) for i in images], binary=True)],
        outputs=outputs,
        parameters=LOOSE,
        request_id="req-42",
    )
    assert result.get_response()["id"] == "req-42"
    assert_matches_reference(_outputs(result), reference(images, **LOOSE))


@pytest.mark.parametrize("binary", [True, False])
def test_uint8_pixel_arrays_match_the_model(client, binary):
    batch = np.stack([circles_image(72, 72, seed) for seed in (3, 4, 5)])
    tensor = httpclient.InferInput("image", list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUT_NAMES]
    result = client.infer(MODEL, [tensor], outputs=outputs, parameters=LOOSE)
    assert_matches_reference(_outputs(result), reference(list(batch), **LOOSE))


def test_outputs_filter_and_default_parameters(client):
    image = circles_image(64, 64, 7)
    result = client.infer(
        MODEL,
        [_bytes_input([encode(image)], binary=True)],
        outputs=[httpclient.InferRequestedOutput("num_detections")],
    )
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["num_detections"]
    assert "id" not in response  # no nulls: absent fields are omitted
    assert result.as_numpy("num_detections").tolist() == [len(reference([image], 0.5, 100)[0])]


async def test_aio_client(bento_server):
    images = [circles_image(64, 64, 8), circles_image(96, 64, 9)]
    async with aiohttpclient.InferenceServerClient(bento_server.http_url) as client:
        assert await client.is_server_ready()
        assert (await client.get_model_metadata(MODEL))["name"] == MODEL
        tensor = aiohttpclient.InferInput("image", [2], "BYTES")
        tensor.set_data_from_numpy(np.array([encode(i) for i in images], dtype=object))
        result = await client.infer(MODEL, [tensor], parameters=LOOSE)
    assert_matches_reference(_outputs(result), reference(images, **LOOSE))


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client, algorithm):
    images = [circles_image(64, 64, 17), circles_image(72, 88, 18)]
    result = client.infer(
        MODEL,
        [_bytes_input([encode(i) for i in images], binary=True)],
        parameters=LOOSE,
        request_compression_algorithm=algorithm,
    )
    assert_matches_reference(_outputs(result), reference(images, **LOOSE))
