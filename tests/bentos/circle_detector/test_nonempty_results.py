"""Server results equal the in-process model when there ARE detections to compare.

The committed weights may be an untrained placeholder that reports nothing; here a Bento serves
the same checkpoint with its heatmap prior raised, so that every image yields candidates, and
REST (binary and JSON) and gRPC answers are compared with `CircleDetector` on the same inputs,
uneven counts and zero padding included.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from bentos.circle_detector.model.detector import CircleDetector
from tests.bentos.circle_detector.images import (
    assert_matches_reference,
    circles_image,
    encode,
    hot_checkpoint,
)
from tests.servers import prepare_bentoml_home, running_bento

OUTPUT_NAMES = ["num_detections", "boxes", "centers", "radii", "scores"]
PARAMS = {"score_threshold": 0.0, "max_detections": 9}


@pytest.fixture(scope="module")
def hot_detector(tmp_path_factory):
    path = hot_checkpoint(tmp_path_factory.mktemp("hot") / "hot.pt")
    return path, CircleDetector.load(path)


@pytest.fixture(scope="module")
def hot_server(hot_detector, tmp_path_factory):
    home = prepare_bentoml_home(tmp_path_factory.mktemp("hot-home"), weights=hot_detector[0])
    with running_bento(home, standalone=True) as server:
        yield server


@pytest.fixture(scope="module")
def images():
    return [circles_image(64, 64, 61), circles_image(96, 128, 62), circles_image(80, 72, 63, 3)]


@pytest.mark.parametrize("binary", [True, False])
def test_rest(hot_server, hot_detector, images, binary):
    expected = hot_detector[1].detect_arrays(images, **PARAMS)
    assert all(len(e) > 0 for e in expected), "the hot model must report candidates"
    with httpclient.InferenceServerClient(hot_server.http_url) as client:
        tensor = httpclient.InferInput("image", [3], "BYTES")
        tensor.set_data_from_numpy(np.array([encode(i) for i in images], dtype=object))
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in OUTPUT_NAMES]
        result = client.infer("circle-detector", [tensor], outputs=outputs, parameters=PARAMS)
    assert_matches_reference({n: result.as_numpy(n) for n in OUTPUT_NAMES}, expected)


def test_grpc_uint8(hot_server, hot_detector, images):
    batch = np.stack([i if i.ndim == 2 else i[..., 0] for i in images[:1]] * 2)
    expected = hot_detector[1].detect_arrays(list(batch), **PARAMS)
    assert len(expected[0]) > 0
    with grpcclient.InferenceServerClient(hot_server.grpc_url) as client:
        tensor = grpcclient.InferInput("image", list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch)
        result = client.infer("circle-detector", [tensor], parameters=PARAMS)
    assert_matches_reference({n: result.as_numpy(n) for n in OUTPUT_NAMES}, expected)
