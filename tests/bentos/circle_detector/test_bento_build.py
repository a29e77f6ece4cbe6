"""`bentoml build` from the repo root: the Bento holds the service, the model and CPU-only deps,
and no torch: it serves the ONNX model with ONNX Runtime."""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import tritonclient.http as httpclient
import yaml

from tests.bentos.circle_detector.images import LOOSE, circles_image, encode, reference
from tests.servers import BENTOML, REPO_ROOT, free_port, running_bento

CUDA = re.compile(r"nvidia-|cuda|cudnn|triton==", re.I)


def test_build_makes_a_cpu_bento_with_service_and_model(bentoml_home):
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    out = subprocess.run(
        [str(BENTOML), "build", "-o", "tag"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    tag = re.search(r"__tag__:(\S+)", out)[1]
    name, version = tag.split(":")
    bento = bentoml_home / "bentos" / name / version
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    assert info["service"] == "bentos.circle_detector.service:CircleDetectorService"
    models = [m["tag"] for s in info["services"] for m in s["models"]]
    assert len(models) == 1 and models[0].startswith("circle-detector:")
    assert (bentoml_home / "models" / "circle-detector").is_dir()
    assert (bento / "src/bentos/circle_detector/service.py").is_file()
    assert (bento / "src/bentos/circle_detector/protocol/codec.py").is_file()
    assert (bento / "src/bentos/circle_detector/standalone.py").is_file()  # the image's entrypoint
    assert not list((bento / "src").rglob("*.pt")), "weights come from the model store"
    assert not list((bento / "src").rglob("*.onnx")), "the network comes from the model store"
    assert not (bento / "src/tests").exists()
    assert not (bento / "src/bentos/circle_detector/training").exists()
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert not re.search(r"^torch\b", requirements, re.M), requirements
    assert "pytorch.org" not in requirements
    assert re.search(r"^onnxruntime==", requirements, re.M), requirements
    assert not CUDA.search(requirements), requirements
    model_files = {p.name for p in (bentoml_home / "models" / "circle-detector").rglob("*.*")}
    assert {"circle_detector.onnx", "circle_detector.json"} <= model_files
    routes = [r["route"] for r in info["schema"]["routes"]]
    assert routes == ["/detect"]

    # The built artifact serves: `bentoml serve TAG` outside the source tree, model from the
    # Bento, on the port Knative passes in PORT (no --port).
    port = free_port()
    with running_bento(bentoml_home, env={"PORT": str(port)}, bento=tag) as server:
        assert server.http_url == f"127.0.0.1:{port}"
        image = circles_image(64, 64, 81)
        with httpclient.InferenceServerClient(server.http_url) as client:
            assert client.get_model_metadata("circle-detector")["versions"]
            tensor = httpclient.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([encode(image)], dtype=object))
            result = client.infer("circle-detector", [tensor], parameters=LOOSE)
        assert result.as_numpy("num_detections").tolist() == [len(reference([image], **LOOSE)[0])]
