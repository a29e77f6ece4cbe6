"""Training targets and detection metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from bentos.circle_detector.training.metrics import (
    FP,
    IGNORED,
    TP,
    average_precision,
    evaluate_predictions,
    label_detections,
)
from bentos.circle_detector.training.targets import build_targets


def test_targets_put_a_one_at_the_centre_cell() -> None:
    t = build_targets((64, 64), np.array([[21.0, 30.0, 8.0]]), np.array([False]))
    assert t.heatmap.shape == (16, 16)
    assert t.heatmap[7, 5] == 1.0 and (t.heatmap <= 1.0).all()
    assert t.index.tolist() == [7 * 16 + 5]
    np.testing.assert_allclose(t.offset, [[0.25, 0.5]])
    np.testing.assert_allclose(t.log_radius, [np.log(2.0)])


def test_difficult_circles_are_ignored_not_negative() -> None:
    t = build_targets((64, 64), np.array([[32.0, 32.0, 8.0]]), np.array([True]))
    assert t.heatmap.max() == 0.0 and len(t.index) == 0
    assert t.weight[8, 8] == 0.0 and t.weight[0, 0] == 1.0


def test_labels_tp_fp_and_ignored() -> None:
    truth = np.array([[10.0, 10.0, 5.0], [50.0, 50.0, 5.0]])
    difficult = np.array([False, True])
    dets = np.array(
        [
            [10.0, 10.0, 5.0, 0.9],  # matches the required circle
            [10.2, 10.0, 5.0, 0.8],  # duplicate of it: false positive
            [50.0, 50.0, 5.0, 0.7],  # matches the difficult one: ignored
            [90.0, 90.0, 5.0, 0.6],  # nothing there
        ]
    )
    assert label_detections(dets, truth, difficult, 0.5).tolist() == [TP, FP, IGNORED, FP]


def test_average_precision_by_hand() -> None:
    # Ranked TP, FP, TP of 2 truths: precision 1 at recall 0.5, 2/3 at recall 1.
    scores = np.array([0.9, 0.8, 0.7])
    labels = np.array([TP, FP, TP])
    assert average_precision(scores, labels, 2) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert average_precision(scores[:1], labels[:1], 1) == pytest.approx(1.0)
    assert average_precision(np.zeros(0), np.zeros(0, dtype=int), 3) == 0.0


def test_report_at_the_operating_point() -> None:
    truth = [np.array([[10.0, 10.0, 5.0], [40.0, 40.0, 8.0]])]
    preds = [np.array([[10.5, 10.0, 5.5, 0.9], [40.0, 40.0, 8.0, 0.3], [70.0, 70.0, 4.0, 0.6]])]
    report, curves = evaluate_predictions(preds, truth, [np.array([False, False])], 0.5, 1.0)
    assert (report.true_positives, report.false_positives, report.n_truth) == (1, 1, 2)
    assert report.precision == 0.5 and report.recall == 0.5
    assert report.centre_error == pytest.approx(0.5) and report.radius_error == pytest.approx(0.5)
    assert report.ap50 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert set(curves) == {"AP50", "AP75"}
