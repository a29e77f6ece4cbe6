"""The committed weights reproduce the coins numbers written in their model card."""

from __future__ import annotations

import re

import pytest
import skimage.data

from bentos.circle_detector.model.detector import WEIGHTS_PATH, CircleDetector
from bentos.circle_detector.training.evaluation import coins_truth
from bentos.circle_detector.training.metrics import evaluate_predictions


def card_row(dataset: str, method: str) -> list[str]:
    card = WEIGHTS_PATH.with_name("MODEL_CARD.md").read_text()
    match = re.search(rf"^{dataset}\s+{method}\s+(.*)$", card, re.MULTILINE)
    assert match, f"no {dataset}/{method} row in the model card"
    return match.group(1).split()


def test_weights_are_small_and_versioned() -> None:
    assert WEIGHTS_PATH.stat().st_size < 5 * 1024 * 1024  # the bound is 10 MB
    detector = CircleDetector.load()
    assert detector.info.version == "6"
    assert detector.info.metadata["training"]["seed"] == 0


def test_coins_match_the_model_card() -> None:
    """At the operating point, as the card's table: no false coin, the card's true ones."""
    detector = CircleDetector.load(threads=2)
    truth = coins_truth()
    found = detector.detect_arrays([skimage.data.coins()], score_threshold=0.0)
    report, _ = evaluate_predictions(found, [truth], [truth[:, 0] < -1], 0.5, 0.0)
    ap50, *_, tp, fp, gt, c_err, r_err, _ms = card_row("coins", "circle-detector")
    assert (report.true_positives, report.false_positives, report.n_truth) == (
        int(tp),
        int(fp),
        int(gt),
    )
    assert report.false_positives == 0 and report.true_positives >= 23 and report.n_truth == 24
    assert report.ap50 == pytest.approx(float(ap50), abs=1e-3)
    assert report.centre_error == pytest.approx(float(c_err), abs=0.01)
    assert report.radius_error == pytest.approx(float(r_err), abs=0.01)
    assert report.centre_error <= 1.0 and report.radius_error <= 1.0
