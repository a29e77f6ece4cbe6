"""The launcher honours KServe's runtime contract, with KServe's own storage initializer.

KServe starts a ServingRuntime's container as `--model_name={{.Name}} --model_dir=/mnt/models
--http_port=8080`, after its storage-initializer container has put the model in /mnt/models.
Here the real initializer code (`kserve-storage`, in a virtual environment of its own as in its
own container) downloads the exported model from an http:// URI served on 127.0.0.1 (a tar.gz
it unpacks) and from an s3:// URI on a real S3 API server (moto's, on 127.0.0.1); the launcher
then serves that directory, unchanged, under the name it was given, over V2 REST and gRPC.
(Mocked: nothing; only Kubernetes itself is absent.)
"""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from bentos.circle_detector.model.artifacts import (
    METADATA_FILE,
    MODEL_DIR,
    ONNX_FILE,
    ModelFileError,
    model_versions,
    read_metadata,
    sha256,
)
from tests.bentos.circle_detector.images import LOOSE, circles_image, encode, reference
from tests.servers import REPO_ROOT, free_port, start_bento, stop_bento, stop_process_group
from tests.venvs import own_venv

KSERVE_STORAGE = "kserve-storage==0.21.0"
STORAGE_VENV = REPO_ROOT / ".venv" / "kserve-storage"
SERVED_NAME = "circles-prod"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def storage_python() -> Path:
    """KServe's storage-initializer code in its own virtual environment (made once, ~1 min)."""
    return own_venv(STORAGE_VENV, KSERVE_STORAGE)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    """The exported model as `circle-detector export --repository` lays it out."""
    root = tmp_path_factory.mktemp("export") / "repository"
    done = subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.cli", "export", "--repository", str(root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def model_archive(repository) -> Path:
    """The repository in a tar.gz, as one file on a web server."""
    archive = repository.parent / "circle-detector.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for version in repository.iterdir():
            tar.add(version, arcname=version.name)
    return archive


@pytest.fixture(scope="module")
def http_uri(model_archive) -> Iterator[str]:
    """An http:// storage URI on 127.0.0.1 (python's file server, as any web server would)."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(model_archive.parent)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{model_archive.name}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def s3_uri(repository, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    """The repository in a bucket of a real S3 API server; the initializer's environment."""
    from tests.backend.s3 import CREDENTIALS, start_moto

    moto = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        client = moto.client()
        client.create_bucket(Bucket="models")
        for path in repository.rglob("*"):
            if path.is_file():
                key = f"circle-detector/{path.relative_to(repository)}"
                client.upload_file(str(path), "models", key)
        yield "s3://models/circle-detector", {**CREDENTIALS, "AWS_ENDPOINT_URL": moto.url}
    finally:
        stop_process_group(moto.process, signal.SIGTERM, 10)


@pytest.fixture(scope="module", params=["http", "s3"])
def mnt_models(request, storage_python, tmp_path_factory) -> Path:
    """What the storage initializer leaves in /mnt/models, made read-only as KServe mounts it."""
    uri, env = (request.getfixturevalue("http_uri"), {}) if request.param == "http" else \
        request.getfixturevalue("s3_uri")  # fmt: skip
    out = tmp_path_factory.mktemp("mnt") / "models"
    script = "import sys; from kserve_storage import Storage; " \
             "print(Storage.download_files([sys.argv[1]], [sys.argv[2]]))"  # fmt: skip
    done = subprocess.run(
        [str(storage_python), "-c", script, uri, str(out)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for path in [out, *out.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return out


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}  # fmt: skip


def test_the_initializer_unpacks_a_repository_of_versions(mnt_models) -> None:
    committed_version = read_metadata(MODEL_DIR)[0].version
    assert [v.name for v in model_versions(mnt_models)] == [committed_version]
    served = model_versions(mnt_models)[-1]
    assert sha256(served / ONNX_FILE) == sha256(MODEL_DIR / ONNX_FILE)


def test_serves_the_model_dir_under_kserves_arguments(bentoml_home, mnt_models) -> None:
    before = _snapshot(mnt_models)
    http_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "bentos.circle_detector.standalone", "--host", "127.0.0.1",
        f"--model_name={SERVED_NAME}", f"--model_dir={mnt_models}",
        f"--http_port={http_port}", f"--grpc_port={grpc_port}",
    ]  # fmt: skip
    env = {"CIRCLE_DETECTOR_MODEL_TAG": "no-such-model:latest"}  # the store is not used
    server = start_bento(
        bentoml_home, env=env, http_port=http_port, grpc_port=grpc_port, command=command
    )
    try:
        image = circles_image(96, 96, 77)
        expected = len(reference([image], **LOOSE)[0])
        with httpclient.InferenceServerClient(server.http_url) as client:
            assert client.is_model_ready(SERVED_NAME)
            assert client.get_model_metadata(SERVED_NAME)["name"] == SERVED_NAME
            tensor = httpclient.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([encode(image)], dtype=object))
            result = client.infer(SERVED_NAME, [tensor], parameters=LOOSE)
            assert result.as_numpy("num_detections").tolist() == [expected]
        wrong = httpx.get(f"http://{server.http_url}/v2/models/circle-detector/ready", timeout=5)
        assert wrong.status_code == 404 and SERVED_NAME in wrong.json()["error"]
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            assert client.is_model_ready(SERVED_NAME)
            tensor = grpcclient.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([encode(image)], dtype=object))
            result = client.infer(SERVED_NAME, [tensor], parameters=LOOSE)
            assert result.as_numpy("num_detections").tolist() == [expected]
    finally:
        stop_bento(server)
    assert _snapshot(mnt_models) == before  # read-only: nothing written, nothing touched


@pytest.mark.parametrize("launcher", ["standalone", "bentoml"])
def test_the_environment_gives_the_same_contract(bentoml_home, mnt_models, launcher) -> None:
    env = {
        "CIRCLE_DETECTOR_MODEL_DIR": str(mnt_models),
        "CIRCLE_DETECTOR_MODEL_NAME": "env-name",
        "CIRCLE_DETECTOR_MODEL_TAG": "no-such-model:latest",  # the store is not used
    }
    server = start_bento(bentoml_home, env=env, standalone=launcher == "standalone")
    try:
        with httpclient.InferenceServerClient(server.http_url) as client:
            assert client.is_model_ready("env-name")
    finally:
        stop_bento(server)


@pytest.mark.parametrize("layout", ["missing", "empty", "no-model"])
def test_a_model_dir_without_a_model_is_one_clear_line(tmp_path, layout) -> None:
    model_dir = tmp_path / "models"
    if layout != "missing":
        model_dir.mkdir()
    if layout == "no-model":
        (model_dir / "1").mkdir()
        (model_dir / "1" / "README").write_text("not a model")
    env = {**os.environ, "CIRCLE_DETECTOR_GRPC_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.standalone", "--host", "127.0.0.1",
         f"--http_port={free_port()}", f"--model_dir={model_dir}"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("error: model directory") and "Traceback" not in done.stderr


def test_the_newest_version_is_the_highest_number(tmp_path) -> None:
    for name in ("9", "10", "candidate"):
        (tmp_path / name).mkdir()
        (tmp_path / name / METADATA_FILE).write_text("{}")
    (tmp_path / "11").mkdir()  # no model in it
    assert [v.name for v in model_versions(tmp_path)] == ["candidate", "9", "10"]
    assert model_versions(tmp_path / "10") == [tmp_path / "10"]
    with pytest.raises(ModelFileError, match="holds no model"):
        model_versions(tmp_path / "11")


def test_bad_ports_are_refused_by_the_command_line(capsys) -> None:
    from bentos.circle_detector import standalone

    with pytest.raises(SystemExit):
        standalone.build_parser().parse_args(["--grpc_port=70000"])
    assert "not a port number" in capsys.readouterr().err
