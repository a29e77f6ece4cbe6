"""scripts/load-model-pvc.sh puts the exported model where the local overlay's storageUri
(pvc://CLAIM/PATH) says. Mocked: kubectl and the cluster (tests/k8s/fake_cluster/kubectl, whose
`cp` and `exec` act on a folder standing in for the claim)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from bentos.circle_detector.model.artifacts import sha256
from tests.k8s import contracts
from tests.k8s.manifests import REPO_ROOT, SCRIPTS, one, render

FAKE_BIN = Path(__file__).with_name("fake_cluster")
WEIGHTS = REPO_ROOT / "bentos/circle_detector/model/weights"


def _load(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / "load-model-pvc.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "PATH": f"{FAKE_BIN}:{os.environ['PATH']}",
            "FAKE_DIR": str(tmp_path),
            **env,
        },
    )


def _calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def _export(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ("circle_detector.onnx", "circle_detector.json"):
        shutil.copy(WEIGHTS / name, folder / name)
    return folder


def test_loads_the_committed_export_onto_the_claim_the_storage_uri_names(tmp_path):
    result = _load(tmp_path)
    assert result.returncode == 0, result.stderr
    model = one(render("local"), "InferenceService")["spec"]["predictor"]["model"]
    claim, path = model["storageUri"].removeprefix("pvc://").split("/", 1)
    landed = tmp_path / "pvc" / path
    assert sorted(p.name for p in landed.iterdir()) == [
        "circle_detector.json",
        "circle_detector.onnx",
    ]
    assert sha256(landed / "circle_detector.onnx") == sha256(WEIGHTS / "circle_detector.onnx")
    docs = [d for d in yaml.safe_load_all((tmp_path / "applied.yaml").read_text()) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, contracts.kubernetes_version(), strict=True)
    pvc = one(docs, "PersistentVolumeClaim")
    pod = one(docs, "Pod")
    assert pvc["metadata"]["name"] == claim
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim
    # The Bento's image (already on the kind node), as the runtime's uid.
    assert pod["spec"]["containers"][0]["image"] == contracts.images().bento
    assert pod["spec"]["securityContext"]["runAsUser"] == 1034
    calls = _calls(tmp_path)
    assert calls[0] == "apply -f -" and calls[1].startswith("wait --for=condition=Ready pod/")
    assert any(c.startswith("cp ") for c in calls)
    assert calls[-1].startswith("delete pod circle-detector-model-loader")


def test_a_repository_of_versions_is_copied_whole(tmp_path):
    repo = tmp_path / "repo"
    _export(repo / "2")
    result = _load(tmp_path, "--model-dir", str(repo))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "pvc/circle-detector/2/circle_detector.onnx").is_file()


def test_a_folder_without_a_model_is_refused_before_touching_the_cluster(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _load(tmp_path, "--model-dir", str(empty))
    assert result.returncode != 0
    assert "no exported model" in result.stderr and "circle-detector export" in result.stderr
    assert not (tmp_path / "calls").exists()


def test_the_helper_pod_is_deleted_when_the_copy_fails(tmp_path):
    result = _load(tmp_path, FAKE_CP_FAILS="1")
    assert result.returncode != 0
    assert any(c.startswith("delete pod circle-detector-model-loader") for c in _calls(tmp_path))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_on_object_storage_are_refused(tmp_path, overlay):
    result = _load(tmp_path, overlay)
    assert result.returncode != 0 and "no pvc:// storageUri" in result.stderr
