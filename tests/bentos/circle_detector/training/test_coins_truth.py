"""The coins truth is a fixed point of its own fit, and the fit finds an edge its start missed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bentos.circle_detector.training import coins_truth
from bentos.circle_detector.training.evaluation import coins_truth as committed_truth
from bentos.circle_detector.training.synthetic import circle_mask

skimage_data = pytest.importorskip("skimage.data")


def test_committed_truth_is_where_its_fit_settles() -> None:
    truth = committed_truth()
    refit = coins_truth.fit_truth(skimage_data.coins(), truth)
    assert len(truth) == 24
    np.testing.assert_allclose(refit, truth, atol=0.02)  # the file keeps two decimals


def test_fit_reaches_an_edge_beyond_a_narrow_window() -> None:
    """A start 3 px off in centre and 2.5 px in radius: one side's edge is 5 px from it."""
    image = (60 + 140 * circle_mask(200, 220, 100.3, 90.7, 25.0, 0.0)).astype(np.uint8)
    fit = coins_truth.fit_truth(image, np.array([[97.3, 91.2, 27.5]]))[0]
    np.testing.assert_allclose(fit, [100.3, 90.7, 25.0], atol=0.15)


def test_command_rewrites_the_file_with_its_method(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "coins_truth.json"
    shutil.copy(coins_truth.TRUTH_FILE, target)
    assert coins_truth.main(["--file", str(target)]) == 0
    written = json.loads(target.read_text())
    assert written["method"] == coins_truth.METHOD and len(written["circles"]) == 24
    assert "24 coins, centres moved" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"", "not a truth file"),
        (b'{"circles": [{"cx": 1, "cy": 2', "not a truth file"),  # truncated
        (b"\xff\xfe\x00binary", "not a truth file"),
        (b'{"image": "x"}', "not a truth file"),  # no circles
        (b'{"circles": [{"cx": "a", "cy": 2, "r": 3}]}', "not a truth file"),
        (b'{"circles": [[1, 2, 3]]}', "not a truth file"),
        (b'{"circles": [{"cx": 1, "cy": 2, "r": -3}]}', "r positive"),
        (b'{"circles": [{"cx": NaN, "cy": 2, "r": 3}]}', "finite"),
    ],
)
def test_command_refuses_a_bad_file_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, named: str
) -> None:
    target = tmp_path / "coins_truth.json"
    target.write_bytes(content)
    assert coins_truth.main(["--file", str(target)]) == 2
    err = capsys.readouterr().err
    assert named in err and str(target) in err
    assert target.read_bytes() == content


def test_command_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.json"
    assert coins_truth.main(["--file", str(missing)]) == 2
    assert "cannot be read" in capsys.readouterr().err and not missing.exists()


#: The command in a process that kills itself with SIGKILL halfway through writing the new file
#: (its first half on disk) or just before the rename that puts it in place.
KILLED_REWRITE = """
import os, signal, sys
from pathlib import Path
from bentos.circle_detector.model import artifacts
from bentos.circle_detector.training import coins_truth
def half_then_die(self, data):
    with open(self, "wb") as out:
        out.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
if sys.argv[2] == "writing":
    Path.write_bytes = half_then_die
else:
    artifacts.os.replace = die
coins_truth.main(["--file", sys.argv[1]])
"""


@pytest.mark.parametrize("moment", ["writing", "renaming"])
def test_a_rewrite_killed_midway_leaves_the_old_file_whole(tmp_path: Path, moment: str) -> None:
    target = tmp_path / "coins_truth.json"
    target.write_text(json.dumps({"circles": [{"cx": 46.1, "cy": 53.9, "r": 19.7}]}))
    before = target.read_bytes()
    done = subprocess.run([sys.executable, "-c", KILLED_REWRITE, str(target), moment], timeout=120)
    assert done.returncode == -9
    assert target.read_bytes() == before
    coins_truth.read_truth(target)  # still a whole truth file
