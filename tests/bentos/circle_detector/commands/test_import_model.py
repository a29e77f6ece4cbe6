"""`circle-detector import-model` into a fresh BentoML home: creates the tag once, then does
nothing; the real console script is run, as the Makefile does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bentos.circle_detector.model.detector import WEIGHTS_PATH, CircleDetector
from tests.servers import BENTOML, REPO_ROOT

CLI = Path(sys.executable).with_name("circle-detector")


def _run(home: Path, *args: str) -> str:
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.run(
        [str(CLI), "import-model", *args],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout.strip()


def test_import_is_idempotent_and_versioned(tmp_path):
    first = _run(tmp_path)
    assert first.startswith("imported circle-detector:")
    tag = first.split()[-1]
    assert CircleDetector.load(WEIGHTS_PATH).info.version.lower() in tag
    assert _run(tmp_path) == f"already in the store: {tag}"
    listing = subprocess.run(
        [str(BENTOML), "models", "list", "-o", "json"],
        env={**os.environ, "BENTOML_HOME": str(tmp_path)},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert [m["tag"] for m in json.loads(listing)] == [tag]


def test_missing_or_corrupt_weights_are_clear_errors(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path)}
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch checkpoint")
    for path, phrase in [(tmp_path / "absent.pt", "cannot read"), (junk, "not a circle")]:
        done = subprocess.run(
            [str(CLI), "import-model", "--weights", str(path)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2
        assert phrase in done.stderr and "Traceback" not in done.stderr


KILLED_IMPORT = """
import os, shutil, signal
from bentos.circle_detector.commands import import_model
copied, real_copy = [], shutil.copyfile
def copy_then_die(src, dst):
    if copied:
        os.kill(os.getpid(), signal.SIGKILL)  # killed after the first file of the entry
    copied.append(real_copy(src, dst))
shutil.copyfile = copy_then_die
import_model.import_model()
"""


def test_an_import_killed_mid_copy_leaves_no_entry_and_a_retry_completes(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_IMPORT], cwd=REPO_ROOT, env=env, timeout=120
    )
    assert done.returncode == -9
    listing = subprocess.run(
        [str(BENTOML), "models", "list", "-o", "json"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert json.loads(listing) == [], "a half-copied model must not be in the store"
    tag = _run(tmp_path).split()[-1]
    folder = next((tmp_path / "models" / "circle-detector").glob("*/circle_detector.json")).parent
    assert CircleDetector.load(folder).info.version == "6" and tag.startswith("circle-detector:")
