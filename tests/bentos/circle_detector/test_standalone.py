"""The single-process launcher serves the same Bento: V2 over REST and gRPC, batching metrics."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from bentos.circle_detector import standalone
from tests.bentos.circle_detector.images import LOOSE, circles_image, encode, reference
from tests.servers import REPO_ROOT, free_port, running_bento


@pytest.fixture(scope="module")
def standalone_server(bentoml_home):
    with running_bento(bentoml_home, standalone=True) as server:
        yield server


def test_serves_v2_rest_grpc_and_metrics(standalone_server):
    image = circles_image(64, 64, 51)
    expected = len(reference([image], **LOOSE)[0])
    with httpclient.InferenceServerClient(standalone_server.http_url) as client:
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([encode(image)], dtype=object))
        result = client.infer("circle-detector", [tensor], parameters=LOOSE)
        assert result.as_numpy("num_detections").tolist() == [expected]
    with grpcclient.InferenceServerClient(standalone_server.grpc_url) as client:
        assert client.is_model_ready("circle-detector")
    metrics = httpx.get(standalone_server.metrics_url, timeout=10).text
    assert "circle_detector_batch_size_bucket" in metrics
    assert 'circle_detector_inferences_total{model="circle-detector",outcome="success"}' in metrics


def test_port_defaults_follow_bentoml_port_then_port(monkeypatch):
    monkeypatch.delenv("BENTOML_PORT", raising=False)
    monkeypatch.setenv("PORT", "8080")
    assert standalone.build_parser().parse_args([]).port == 8080
    monkeypatch.setenv("BENTOML_PORT", "3100")
    assert standalone.build_parser().parse_args([]).port == 3100


def test_busy_port_is_a_clear_error(bento_server, capsys):
    port = int(bento_server.http_url.rsplit(":", 1)[1])
    assert standalone.main(["--host", "127.0.0.1", "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_missing_model_says_how_to_import_it(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "CIRCLE_DETECTOR_GRPC_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.standalone", "--host", "127.0.0.1",
         "--port", str(free_port())],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "circle-detector import-model" in done.stderr
