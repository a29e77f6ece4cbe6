"""KServe's own SDK clients against a real Bento: live, ready, model ready and infer.

`InferenceRESTClient` and `InferenceGRPCClient` (kserve 0.21, in a virtual environment of its
own: its pins are not the Bento's) run `kserve_sdk_client.py` in a subprocess that prints JSON.
Every encoding they offer is used: JSON with base64 text in BYTES (KServe's convention, with
and without a data: URI), the binary extension (raw files and base64 text), gRPC raw contents
and gRPC bytes_contents. Base64 that is not of an image is a 400 / INVALID_ARGUMENT naming it.
(Mocked: nothing.)
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.bentos.circle_detector.images import (
    LOOSE,
    assert_matches_reference,
    circles_image,
    encode,
    reference,
)
from tests.servers import REPO_ROOT, BentoServer, start_bento, stop_bento
from tests.venvs import own_venv

KSERVE = "kserve==0.21.0"
SDK_VENV = REPO_ROOT / ".venv" / "kserve-sdk"
CLIENT = Path(__file__).with_name("kserve_sdk_client.py")
MODEL = "circle-detector"
INFER_CASES = [
    "rest_json_base64",
    "rest_json_data_uri",
    "rest_binary_raw",
    "rest_binary_base64",
    "grpc_raw",
    "grpc_bytes_contents_base64",
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    """KServe's SDK in its own virtual environment (made once, ~1 min), without torch."""
    return own_venv(SDK_VENV, KSERVE)


@pytest.fixture(scope="module")
def server(bentoml_home) -> Iterator[BentoServer]:
    bento = start_bento(bentoml_home, standalone=True)
    try:
        yield bento
    finally:
        stop_bento(bento)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [circles_image(64, 80, 11), circles_image(96, 72, 12, channels=3)]


@pytest.fixture(scope="module")
def report(sdk_python, server, images, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("kserve-sdk-images")
    paths = []
    for i, image in enumerate(images):
        paths.append(folder / f"{i}.png")
        paths[-1].write_bytes(encode(image))
    done = subprocess.run(
        [str(sdk_python), str(CLIENT), server.http_url, server.grpc_url, MODEL, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,  # not the repository: nothing of it is importable by the SDK's Python
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_sdk_environment_has_no_torch(sdk_python) -> None:
    done = subprocess.run(
        [str(sdk_python), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "None"


def test_live_and_ready_over_rest_and_grpc(report) -> None:
    for call in ("live", "ready", "model_ready"):
        assert report[f"rest_{call}"] is True, call
        assert report[f"grpc_{call}"] is True, call


@pytest.mark.parametrize("case", INFER_CASES)
def test_infer_in_every_encoding_matches_the_model(report, images, case) -> None:
    answer = report[case]
    assert "outputs" in answer, answer
    outputs = {name: np.asarray(v, dtype=np.float32) for name, v in answer["outputs"].items()}
    outputs["num_detections"] = outputs["num_detections"].astype(np.int32)
    assert_matches_reference(outputs, reference(images, **LOOSE))


@pytest.mark.parametrize(
    ("case", "status"), [("rest_json_garbage", 400), ("grpc_garbage", "INVALID_ARGUMENT")]
)
def test_base64_that_is_not_an_image_is_refused_by_name(report, case, status) -> None:
    assert report[case]["status"] == status
    assert "base64 text, but what it decodes to is not an image file" in report[case]["error"]
