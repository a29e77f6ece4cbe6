"""The coins truth is a fixed point of its own fit, and the fit finds an edge its start missed."""

from __future__ import annotations

import json
import shutil
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
