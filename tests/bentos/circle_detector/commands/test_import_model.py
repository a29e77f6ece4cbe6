"""`import-model` into a fresh BentoML home: creates the tag once, then does nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bentos.circle_detector.model.detector import WEIGHTS_PATH, CircleDetector
from tests.servers import BENTOML, REPO_ROOT

CODE = (
    "from bentos.circle_detector.commands.import_model import import_model;"
    "import json; print(json.dumps(import_model()))"
)


def _import(home) -> tuple[str, bool]:
    env = {**os.environ, "BENTOML_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def test_import_is_idempotent_and_versioned(tmp_path):
    tag, created = _import(tmp_path)
    assert created and tag.startswith("circle-detector:")
    assert CircleDetector.load(WEIGHTS_PATH).info.version.lower() in tag
    assert _import(tmp_path) == (tag, False)
    listing = subprocess.run(
        [str(BENTOML), "models", "list", "-o", "json"],
        env={**os.environ, "BENTOML_HOME": str(tmp_path)},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert [m["tag"] for m in json.loads(listing)] == [tag]
