"""Model folders that are corrupt, truncated, inconsistent or half-written: a `ModelFileError`
naming the problem, never a model that serves something else; and an export killed between its
files leaves a folder that refuses to load until it is exported again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bentos.circle_detector.model.artifacts import (
    CHECKPOINT_FILE,
    METADATA_FILE,
    MODEL_DIR,
    ONNX_FILE,
    ModelFileError,
)
from bentos.circle_detector.model.checkpoint import load_checkpoint, save_checkpoint
from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.model.export import export_model
from tests.servers import REPO_ROOT, free_port


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "model"
    copy.mkdir()
    for name in (CHECKPOINT_FILE, ONNX_FILE, METADATA_FILE):
        shutil.copyfile(MODEL_DIR / name, copy / name)
    return copy


def _edit_metadata(folder, change):
    doc = json.loads((folder / METADATA_FILE).read_text())
    change(doc)
    (folder / METADATA_FILE).write_text(json.dumps(doc))


def test_the_copy_loads_with_both_runtimes(folder):
    assert CircleDetector.load(folder).network.name == "onnxruntime"
    assert CircleDetector.load(folder, runtime="torch").network.name == "torch"


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda f: (f / METADATA_FILE).write_text("{not json"), "cannot read model metadata"),
        (lambda f: (f / METADATA_FILE).write_bytes(b"\xff\xfe\x00"), "cannot read model metadata"),
        (lambda f: (f / METADATA_FILE).write_text("[1, 2]"), "is not circle-detector metadata"),
        (lambda f: _edit_metadata(f, lambda d: d.update(format=99)), "of format 1"),
        (lambda f: _edit_metadata(f, lambda d: d.pop("scorer")), "is incomplete"),
        (lambda f: _edit_metadata(f, lambda d: d["scorer"].update(mean="x")), "is incomplete"),
        (lambda f: (f / METADATA_FILE).unlink(), "cannot read model metadata"),
        (lambda f: (f / ONNX_FILE).unlink(), "is missing"),
        (lambda f: (f / ONNX_FILE).write_bytes(b"truncated"), "does not match the digest"),
    ],
)
def test_a_damaged_folder_is_a_clear_error(folder, damage, phrase):
    damage(folder)
    with pytest.raises(ModelFileError, match=phrase):
        CircleDetector.load(folder)


def test_garbage_onnx_without_a_recorded_digest_is_a_clear_error(folder):
    _edit_metadata(folder, lambda d: d["files"]["onnx"].pop("sha256"))
    (folder / ONNX_FILE).write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        CircleDetector.load(folder)


def test_the_torch_runtime_checks_the_checkpoints_digest_too(folder):
    (folder / CHECKPOINT_FILE).write_bytes((folder / CHECKPOINT_FILE).read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="does not match the digest"):
        CircleDetector.load(folder, runtime="torch")


KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from bentos.circle_detector.model import artifacts, export
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
export.write_metadata = die  # killed after the ONNX file, before the metadata
export.export_model(artifacts.WEIGHTS_PATH, Path(sys.argv[1]))
"""


def _killed_export(target) -> None:
    done = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, str(target)], cwd=REPO_ROOT, timeout=180
    )
    assert done.returncode == -9


def test_an_export_killed_between_its_files_is_refused_then_repaired(folder, tmp_path):
    # An older export in the folder: its checkpoint and ONNX differ from the committed ones.
    net, info, scorer = load_checkpoint(MODEL_DIR / CHECKPOINT_FILE)
    net.heatmap.bias.data.fill_(2.0)
    save_checkpoint(tmp_path / "old.pt", net, info, scorer)
    export_model(tmp_path / "old.pt", folder)
    _killed_export(folder)  # new checkpoint and ONNX written, the old metadata left
    assert not list(folder.glob(".*.tmp")), "no half-written file is left under a real name"
    with pytest.raises(ModelFileError, match="does not match the digest"):
        CircleDetector.load(folder)
    with pytest.raises(ModelFileError, match="does not match the digest"):
        CircleDetector.load(folder, runtime="torch")
    export_model(MODEL_DIR / CHECKPOINT_FILE, folder)  # exporting again repairs it
    assert CircleDetector.load(folder).info.version == "6"


def test_an_export_killed_in_a_new_folder_leaves_no_loadable_model(tmp_path):
    _killed_export(tmp_path / "new")
    with pytest.raises(ModelFileError, match="cannot read model metadata"):
        CircleDetector.load(tmp_path / "new")


def test_the_launcher_refuses_a_damaged_model_dir_with_a_message(folder):
    (folder / ONNX_FILE).write_bytes(b"truncated")
    done = subprocess.run(
        [sys.executable, "-m", "bentos.circle_detector.standalone", "--host", "127.0.0.1",
         "--port", str(free_port()), "--model-dir", str(folder)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "does not match the digest" in done.stderr and "Traceback" not in done.stderr
