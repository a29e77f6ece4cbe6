"""`circle-detector export`: a model folder that loads without torch and matches its checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bentos.circle_detector.model.artifacts import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    MODEL_DIR,
    ONNX_FILE,
    WEIGHTS_PATH,
    sha256,
)
from tests.servers import REPO_ROOT

CLI = Path(sys.executable).with_name("circle-detector")


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(CLI), "export", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)


def test_export_writes_a_folder_that_matches_the_committed_one(tmp_path):
    done = _export("--output", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "m"
    assert {p.name for p in folder.iterdir()} == {CHECKPOINT_FILE, ONNX_FILE, METADATA_FILE}
    assert sha256(folder / ONNX_FILE) == sha256(MODEL_DIR / ONNX_FILE)  # deterministic export
    meta = json.loads((folder / METADATA_FILE).read_text())
    assert meta["files"]["checkpoint"]["sha256"] == sha256(WEIGHTS_PATH)
    assert meta["files"]["onnx"]["sha256"] == sha256(folder / ONNX_FILE)
    assert meta["version"] == "6" and meta["parameters"] > 400_000


def test_repository_layout_has_one_folder_per_version(tmp_path):
    done = _export("--repository", str(tmp_path / "repo"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "repo" / "6" / ONNX_FILE).is_file()


def test_bad_checkpoints_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    for path, phrase in [(tmp_path / "absent.pt", "cannot read"), (junk, "not a circle")]:
        done = _export("--weights", str(path), "--output", str(tmp_path / "out"))
        assert done.returncode == 2 and phrase in done.stderr and "Traceback" not in done.stderr
