"""V2 gRPC through tritonclient's gRPC clients (sync and aio) against a real `bentoml serve`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
from tritonclient.utils import InferenceServerException

from tests.bentos.circle_detector.images import (
    LOOSE,
    assert_matches_reference,
    circles_image,
    encode,
    reference,
)

MODEL = "circle-detector"
OUTPUT_NAMES = ["num_detections", "boxes", "centers", "radii", "scores"]


def _outputs(result) -> dict[str, np.ndarray]:
    return {name: result.as_numpy(name) for name in OUTPUT_NAMES}


def _bytes_input(files: list[bytes]) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=object))
    return tensor


@pytest.fixture(scope="module")
def client(bento_server):
    with grpcclient.InferenceServerClient(bento_server.grpc_url) as c:
        yield c


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert "binary_tensor_data" in client.get_server_metadata(as_json=True)["extensions"]
    meta = client.get_model_metadata(MODEL, as_json=True)
    assert [o["name"] for o in meta["outputs"]] == OUTPUT_NAMES
    assert client.get_model_metadata(MODEL, meta["versions"][0], as_json=True)["name"] == MODEL


def test_bytes_images_of_mixed_sizes_match_the_model(client):
    images = [circles_image(64, 96, 11), circles_image(100, 80, 12, channels=4)]
    result = client.infer(
        MODEL, [_bytes_input([encode(i) for i in images])], parameters=LOOSE, request_id="g-1"
    )
    assert result.get_response().id == "g-1"
    assert_matches_reference(_outputs(result), reference(images, **LOOSE))


def test_uint8_pixels_and_output_filter(client):
    batch = np.stack([circles_image(64, 64, s, channels=3) for s in (13, 14)])
    tensor = grpcclient.InferInput("image", list(batch.shape), "UINT8")
    tensor.set_data_from_numpy(batch)
    result = client.infer(
        MODEL,
        [tensor],
        outputs=[grpcclient.InferRequestedOutput(n) for n in ("num_detections", "scores")],
        parameters=LOOSE,
    )
    names = [o.name for o in result.get_response().outputs]
    assert names == ["num_detections", "scores"]
    expected = reference(list(batch), **LOOSE)
    assert result.as_numpy("num_detections").tolist() == [len(e) for e in expected]


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (lambda c: c.get_model_metadata("nope"), "NOT_FOUND", "unknown model 'nope'"),
        (lambda c: c.get_model_metadata(MODEL, "999"), "NOT_FOUND", "no version '999'"),
        (lambda c: c.is_model_ready("nope"), "NOT_FOUND", "unknown model"),
        (
            lambda c: c.infer(MODEL, [_bytes_input([b"not an image"])]),
            "INVALID_ARGUMENT",
            "not a recognised image",
        ),
        (
            lambda c: c.infer("nope", [_bytes_input([b"x"])]),
            "NOT_FOUND",
            "unknown model",
        ),
    ],
)
def test_errors_are_grpc_status_codes(client, call, code, message):
    with pytest.raises(InferenceServerException) as info:
        call(client)
    assert info.value.status() == f"StatusCode.{code}"
    assert message in info.value.message()
    assert client.is_server_live()


def test_wrong_datatype_and_shape_mismatch(client):
    tensor = grpcclient.InferInput("image", [1, 8, 8], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 8, 8), dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "must be BYTES" in info.value.message()
    # Claim a shape larger than the raw bytes sent.
    tensor = grpcclient.InferInput("image", [1, 32, 32], "UINT8")
    tensor.set_data_from_numpy(np.zeros((1, 32, 32), dtype=np.uint8))
    tensor.set_shape([1, 64, 64])
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [tensor])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "needs 4096" in info.value.message()


async def test_aio_client(bento_server):
    images = [circles_image(80, 80, 15), circles_image(64, 120, 16)]
    async with aiogrpcclient.InferenceServerClient(bento_server.grpc_url) as client:
        assert await client.is_server_ready()
        meta = await client.get_model_metadata(MODEL, as_json=True)
        assert meta["name"] == MODEL
        tensor = aiogrpcclient.InferInput("image", [2], "BYTES")
        tensor.set_data_from_numpy(np.array([encode(i) for i in images], dtype=object))
        result = await client.infer(MODEL, [tensor], parameters=LOOSE)
    assert_matches_reference(_outputs(result), reference(images, **LOOSE))


@pytest.fixture(scope="module")
def stub(bento_server):
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(bento_server.grpc_url) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def _request(**tensor) -> Any:
    from tritonclient.grpc import service_pb2

    message = service_pb2.ModelInferRequest(model_name=MODEL)
    message.inputs.add(name="image", **tensor)
    return message


@pytest.mark.parametrize(
    ("build", "phrase"),
    [
        (lambda: _request(datatype="UINT8", shape=[-1, 8, 8]), "non-negative"),
        (lambda: _request(datatype="BYTES", shape=[0]), "empty batch"),
        (
            lambda: _with_raw(_request(datatype="UINT8", shape=[1, 8, 8]), [b"\0" * 64] * 2),
            "2 raw_input_contents for 1 inputs",
        ),
        (
            lambda: _with_raw(_request(datatype="BYTES", shape=[1]), [b"\xff\xff\xff\x7fabc"]),
            "claims",
        ),
        (
            lambda: _typed_uint8([300] * 64),
            "out of range",
        ),
    ],
)
def test_hostile_messages_are_invalid_argument(stub, build, phrase):
    import grpc

    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(build(), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert phrase in info.value.details()


def test_typed_contents_are_accepted(stub):
    response = stub.ModelInfer(_typed_uint8(list(range(0, 256, 4))))
    assert response.outputs[0].name == "num_detections"
    assert np.frombuffer(response.raw_output_contents[0], dtype="<i4").shape == (1,)


def _with_raw(message, contents: list[bytes]):
    message.raw_input_contents.extend(contents)
    return message


def _typed_uint8(values: list[int]):
    message = _request(datatype="UINT8", shape=[1, 8, 8])
    message.inputs[0].contents.uint_contents.extend(values)
    return message
