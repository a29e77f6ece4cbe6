"""Calibration, best F1 and per-category breakdowns against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from bentos.circle_detector.training.analysis import analyse
from bentos.circle_detector.training.breakdown import (
    Matched,
    by_radius,
    by_scene_tag,
    false_circles,
    radius_bin,
)
from bentos.circle_detector.training.calibration import best_f1, calibration
from bentos.circle_detector.training.evaluation import MODEL, Dataset, json_safe
from bentos.circle_detector.training.independent import Scene
from bentos.circle_detector.training.metrics import FP, TP, evaluate_predictions, truth_found


def test_ece_by_hand() -> None:
    # Bin 0: mean score 0.05, none true (gap 0.05); bin 9: mean 0.95, half true (gap 0.45).
    cal = calibration(np.array([0.05, 0.05, 0.95, 0.95]), np.array([0, 0, 1, 0]))
    assert cal.ece == pytest.approx(0.5 * 0.05 + 0.5 * 0.45)
    assert cal.ece_above_0_1 == pytest.approx(0.45)
    assert [b.count for b in cal.bins] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert np.isnan(cal.bins[4].precision) and cal.bins[9].precision == 0.5


def test_calibrated_scores_have_no_error() -> None:
    scores = np.r_[np.full(10, 0.25), np.full(10, 0.75)]
    hits = np.r_[[1] * 2 + [0] * 8, [1] * 8 + [0] * 2]  # 20 % and 80 % true ...
    assert calibration(scores, hits).ece == pytest.approx(0.05)  # ... against 25 % and 75 %
    exact = calibration(np.full(4, 0.5), np.array([1, 0, 1, 0]))
    assert exact.ece == 0.0 and exact.max_gap == 0.0  # a single bin under 20 has no max gap


def test_best_f1_threshold() -> None:
    # Ranked TP, TP, FP, TP of 4 truths: F1 0.667, 0.571, 0.75 (at 0.6).
    best = best_f1(np.array([0.9, 0.8, 0.7, 0.6]), np.array([TP, TP, FP, TP]), 4)
    assert best["threshold"] == 0.6 and best["f1"] == pytest.approx(0.75)
    tied = best_f1(np.array([0.9, 0.5, 0.5]), np.array([TP, FP, TP]), 2)
    assert tied["threshold"] == 0.5 and tied["recall"] == 1.0  # ties are kept together


def test_truth_found_and_radius_bins() -> None:
    truth = np.array([[10.0, 10.0, 5.0], [60.0, 60.0, 30.0]])
    dets = np.array([[10.2, 10.0, 5.0, 0.9], [150.0, 150.0, 30.0, 0.8]])
    assert truth_found(dets, truth, np.array([False, False])).tolist() == [True, False]
    assert radius_bin(np.array([4, 7.9, 8, 14.9, 15, 45, 149])).tolist() == [
        "<8",
        "<8",
        "8-15",
        "8-15",
        "15-45",
        ">45",
        ">45",
    ]


def test_breakdown_by_radius_and_scene() -> None:
    truths = [np.array([[10.0, 10.0, 5.0], [60.0, 60.0, 30.0]]), np.zeros((0, 3))]
    preds = [
        np.array([[10.2, 10.0, 5.0, 0.9], [150.0, 150.0, 30.0, 0.8], [60.0, 60.0, 30.0, 0.3]]),
        np.array([[40.0, 40.0, 6.0, 0.7]]),
    ]
    m = Matched.of(preds, truths, [np.zeros(2, dtype=bool), np.zeros(0, dtype=bool)])
    rows = by_radius(m, 0.5)
    assert rows["<8"]["recall"] == 1.0 and rows["<8"]["false_positives"] == 1
    assert rows["15-45"]["recall"] == 0.0 and rows["15-45"]["false_positives"] == 1
    # 15-45 ranks FP (0.8) above the TP (0.3): precision 1/2 at full recall.
    assert rows["15-45"]["ap50"] == pytest.approx(0.5)
    scene = by_scene_tag(m, ["a", "b"], 0.5)
    assert scene["a"]["recall"] == 0.5 and scene["a"]["false_per_image"] == 1.0
    assert scene["b"]["false_positives"] == 1 and np.isnan(scene["b"]["recall"])
    # At 0.75 only the 0.8 detection far from any circle is false (0.9 found a circle).
    assert false_circles(m, 0.75) == {
        "images": 2,
        "false_positives": 1,
        "false_per_image": 0.5,
        "worst_image": 1,
    }


def test_coco_ap_averages_ten_iou_thresholds() -> None:
    # Concentric circles: IoU is (r_det / r_truth)^2 = 0.62, a true positive at IoU 0.50, 0.55
    # and 0.60 only, so AP (mean over 0.50..0.95) is 3/10 while AP50 is 1.
    truth = [np.array([[50.0, 50.0, 10.0]])]
    preds = [np.array([[50.0, 50.0, 10.0 * np.sqrt(0.62), 0.9]])]
    report, _ = evaluate_predictions(preds, truth, [np.zeros(1, dtype=bool)], 0.5, 0.0)
    assert report.ap50 == pytest.approx(1.0) and report.ap75 == 0.0
    assert report.ap == pytest.approx(0.3)


def _scene(circles: np.ndarray, fills: tuple[str, ...], background: str, degradation: str) -> Scene:
    n = len(circles)
    return Scene(
        image=np.zeros((100, 100), dtype=np.uint8),
        circles=circles,
        difficult=np.zeros(n, dtype=bool),
        visible=np.ones(n),
        fills=fills,
        polarity=("light",) * n,
        shadow=np.zeros(n, dtype=bool),
        highlight=np.zeros(n, dtype=bool),
        background="flat" if background == "flat" else "photo",
        degradation=degradation,
        colour=False,
    )


def test_analyse_breaks_down_the_independent_set_and_pools_the_negatives() -> None:
    scenes = [
        _scene(
            np.array([[10.0, 10.0, 5.0], [60.0, 60.0, 30.0]]),
            ("solid", "ring_thin"),
            "flat",
            "none",
        ),
        _scene(np.array([[50.0, 50.0, 20.0]]), ("solid",), "photo", "noise"),
    ]
    indep = Dataset(
        "independent",
        [s.image for s in scenes],
        [s.circles for s in scenes],
        [s.difficult for s in scenes],
        scenes=scenes,
    )
    empty = [np.zeros((0, 3))] * 2
    nothing = [np.zeros(0, dtype=bool)] * 2
    neg_scenes = Dataset("negative-scenes", [np.zeros((9, 9))] * 2, empty, nothing)
    photos = Dataset(
        "negative-photos", [np.zeros((9, 9))] * 2, empty, nothing, image_names=["a", "b"]
    )
    predictions = {
        "independent": [
            np.array([[10.0, 10.0, 5.0, 0.9], [80.0, 20.0, 12.0, 0.6]]),  # small found, 1 FP
            np.array([[50.0, 50.0, 20.0, 0.4]]),  # found, but below the operating point
        ],
        "negative-scenes": [np.array([[5.0, 5.0, 3.0, 0.7]]), np.zeros((0, 4))],
        "negative-photos": [np.zeros((0, 4)), np.array([[5.0, 5.0, 3.0, 0.8]] * 2)],
    }
    analysis, calibrations = analyse(
        [indep, neg_scenes, photos], {k: {MODEL: v} for k, v in predictions.items()}, 0.5
    )
    a = analysis["independent"]
    assert a["by_fill"]["solid"] == {"circles": 2, "found": 1, "recall": 0.5}
    assert a["by_fill"]["ring_thin"]["recall"] == 0.0
    assert a["by_radius"]["<8"]["recall"] == 1.0
    assert a["by_radius"]["8-15"]["false_positives"] == 1  # the stray r=12 detection
    assert a["by_radius"]["15-45"] == pytest.approx(
        {"circles": 2, "found": 0, "recall": 0.0, "ap50": 0.5, "false_positives": 0}
    )  # r=20 found at 0.4 (the only detection in the bin): AP50 1/2 over 2 circles
    assert a["by_background"]["flat"]["false_per_image"] == 1.0
    assert a["by_degradation"]["noise"]["recall"] == 0.0
    # Best F1: ranked TP, FP, TP of 3 circles: F1 1/2 at 0.9, 2/5 at 0.6, 2/3 at 0.4.
    assert a["best_f1"]["threshold"] == 0.4 and a["best_f1"]["f1"] == pytest.approx(2 / 3)
    # Reliability: 0.4 and 0.6 share no bin; the 0.9 TP sits alone in the top bin.
    assert calibrations["independent"].ece == pytest.approx((0.1 + 0.6 + 0.6) / 3)
    assert analysis["negative-photos"]["by_image"] == {"a": 0, "b": 2}
    assert analysis["negatives"]["false_circles"] == {
        "images": 4,
        "false_positives": 3,
        "false_per_image": 0.75,
        "worst_image": 2,
    }
    assert json_safe({"x": [float("nan"), 1.0]}) == {"x": [None, 1.0]}
