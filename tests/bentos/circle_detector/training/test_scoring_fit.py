"""Fitting the score: the calibration error by hand, and a fit on the committed network."""

from __future__ import annotations

import numpy as np
import pytest

from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.training.scoring_fit import (
    candidate_table,
    expected_calibration_error,
    fit_scorer,
)
from bentos.circle_detector.training.synthetic import TRAIN, make_scenes


def test_expected_calibration_error_by_hand() -> None:
    prob = np.array([0.2, 0.2, 0.8, 0.8])
    label = np.array([0.0, 1.0, 1.0, 1.0])
    # bin 0.2: |0.2 - 0.5| * 1/2; bin 0.8: |0.8 - 1| * 1/2
    assert expected_calibration_error(prob, label) == pytest.approx(0.25)
    assert expected_calibration_error(np.array([0.05, 0.95]), np.array([0.0, 1.0])) == (
        pytest.approx(0.05)
    )


def test_scorer_fitted_on_fresh_scenes_is_calibrated_and_beats_the_heat() -> None:
    detector = CircleDetector.load()
    scenes = make_scenes(5, 60, TRAIN)
    heat, features, label = candidate_table(detector, scenes)
    assert len(heat) == len(features) == len(label) and 0 < label.sum() < len(label)
    scorer, stats = fit_scorer(detector, scenes, seed=0)
    assert stats["candidates"] == len(heat) and stats["positives"] == int(label.sum())
    prob = scorer.score(heat, features)
    assert stats["ece"] == pytest.approx(expected_calibration_error(prob, label.astype(float)))
    assert stats["ece"] < 0.05

    def log_loss(p: np.ndarray) -> float:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return float(-np.mean(label * np.log(p) + (1 - label) * np.log(1 - p)))

    assert log_loss(prob) < log_loss(heat)
    again, _ = fit_scorer(detector, scenes, seed=0)
    assert again.score(heat, features) == pytest.approx(prob)  # seeded


def test_the_fitting_module_and_the_serving_scorer_compute_the_same_score() -> None:
    """Training fits `TorchScorer`; serving runs `Scorer` in NumPy from its state dict."""
    import torch

    from bentos.circle_detector.model.scoring import FEATURE_NAMES, logit
    from bentos.circle_detector.training.scoring_fit import TorchScorer

    torch.manual_seed(0)
    module = TorchScorer()
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(std=2.0)
    heat = np.linspace(0.02, 0.98, 40)
    features = np.random.default_rng(4).normal(size=(40, len(FEATURE_NAMES)))
    with torch.no_grad():
        z = module(torch.tensor(logit(heat), dtype=torch.float32), torch.tensor(features).float())
    expected = torch.sigmoid(z).numpy()
    assert module.to_scorer().score(heat, features) == pytest.approx(expected, abs=1e-5)
