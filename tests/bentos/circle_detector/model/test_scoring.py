"""The confidence score: identity before fitting, bounded edge term, noise estimate."""

from __future__ import annotations

import numpy as np
import pytest

from bentos.circle_detector.model.refine import refine_circle
from bentos.circle_detector.model.scoring import (
    FEATURE_NAMES,
    Scorer,
    edge_features,
    image_noise,
)


def random_scorer(seed: int, scale: float = 1.0) -> Scorer:
    """A scorer with every parameter drawn at random (the bound stays positive)."""
    rng = np.random.default_rng(seed)
    state = {k: rng.normal(scale=scale, size=v.shape) for k, v in Scorer().state_dict().items()}
    state["bound"] = np.array(2.0)
    state["std"] = np.abs(state["std"]) + 0.1
    return Scorer.from_state_dict(state)


def test_an_unfitted_scorer_returns_the_heat() -> None:
    heat = np.array([0.01, 0.3, 0.5, 0.97])
    features = np.random.default_rng(0).normal(size=(4, len(FEATURE_NAMES)))
    assert Scorer().score(heat, features) == pytest.approx(heat, abs=1e-5)
    assert Scorer().score(np.zeros(0), np.zeros((0, len(FEATURE_NAMES)))).shape == (0,)


def test_best_possible_bounds_the_score_whatever_the_features() -> None:
    scorer = random_scorer(0, scale=3.0)
    heat = np.linspace(0.01, 0.99, 50)
    extreme = np.random.default_rng(1).normal(scale=100.0, size=(50, len(FEATURE_NAMES)))
    assert (scorer.score(heat, extreme) <= scorer.best_possible(heat) + 1e-6).all()


def test_scorer_state_round_trips() -> None:
    scorer = random_scorer(1)
    copy = Scorer.from_state_dict(scorer.state_dict())
    heat, features = np.array([0.2, 0.7]), np.ones((2, len(FEATURE_NAMES)))
    assert copy.score(heat, features) == pytest.approx(scorer.score(heat, features))


@pytest.mark.parametrize("sigma", [0.01, 0.03, 0.08])
def test_image_noise_estimates_white_noise(sigma: float) -> None:
    grey = 0.5 + np.random.default_rng(2).normal(0, sigma, (256, 256)).astype(np.float32)
    assert image_noise(grey) == pytest.approx(sigma, rel=0.15)


def test_edge_features_have_one_finite_row_per_fit() -> None:
    grey = np.full((64, 64), 0.5, dtype=np.float32)
    fits = [refine_circle(grey, 30.0, 30.0, 10.0), refine_circle(grey, 5.0, 5.0, 40.0)]
    features = edge_features(
        fits, np.array([[30.0, 30.0, 10.0], [5.0, 5.0, 40.0]]), image_noise(grey)
    )
    assert features.shape == (2, len(FEATURE_NAMES)) and np.isfinite(features).all()
    assert edge_features([], np.zeros((0, 3)), 0.01).shape == (0, len(FEATURE_NAMES))
