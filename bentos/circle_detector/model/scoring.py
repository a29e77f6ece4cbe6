"""The confidence score: the probability that a refined candidate is a real circle.

At stride 4 the heatmap cannot tell a small polygon, ellipse or blob from a circle; the
refinement measures the edge at full resolution and can. The score is therefore

    sigmoid(a * logit(heat) + c + bound * tanh(mlp(edge features) / bound))

fitted by log loss on fresh scenes, so it is calibrated: 0.5 means "more likely than not". The
edge term is bounded, so a candidate whose heat cannot reach a threshold whatever its edge looks
like is skipped before the (comparatively costly) refinement.

Scoring is NumPy only, so that serving needs no torch; training fits the same function as a torch
module (`training.scoring_fit`) and hands its parameters over as a state dict.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from .decoding import sigmoid
from .refine import Refinement

#: The edge features, in the order of `edge_features`' columns.
FEATURE_NAMES = (
    "support",
    "accepted",
    "shift",
    "rescale",
    "log_radius",
    "log_noise",
    "residual",
    "harmonic2",
    "harmonic3",
    "harmonic4",
    "roughness",
    "log_edge_snr",
    "strength_spread",
    "coverage",
)
HIDDEN = 32
#: Largest change, in logits, that the edge can make to the heat's score. Version 3 raised it
#: from 2 to 3: its network is less sure of clean discs than version 2's (heat 0.3 to 0.7 on a
#: noise-free disc of radius 20 to 45 px), and a perfect edge is strong evidence that the heat
#: could not lift past 0.76 with 2. The price: candidates with heat down to about 0.05 (was
#: 0.12) are refined at the operating point. Each checkpoint keeps the bound it was fitted with.
BOUND = 3.0
#: The noise estimate looks at about this many pixels, whatever the image size.
NOISE_SAMPLES = 65_536


def image_noise(grey: np.ndarray) -> float:
    """Robust estimate of the image's pixel noise (grey levels), from its Laplacian's MAD."""
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    stride = max(1, int(math.sqrt(lap.size / NOISE_SAMPLES)))
    lap = lap[::stride, ::stride].ravel()
    mad = float(_median(np.abs(lap - _median(lap))))
    # The 3x3 Laplacian of white noise of std s has std s * sqrt(20).
    return 1.4826 * mad / math.sqrt(20.0) + 1e-3


def _median(values: np.ndarray) -> np.floating:
    """`np.median` of a 1-D array, exactly, without its first call's import of `numpy.ma`
    (20 ms of a cold start)."""
    n = len(values)
    middle = [(n - 1) // 2, n // 2]
    return np.partition(values, middle)[middle].mean()


def edge_features(fits: list[Refinement], starts: np.ndarray, noise: float) -> np.ndarray:
    """(K, len(FEATURE_NAMES)) float32 features of K refinements of the circles `starts`
    (rows cx, cy, r, ...) in an image of that noise."""
    rows = [
        (
            f.support,
            float(f.accepted),
            math.hypot(f.cx - cx, f.cy - cy) / max(r, 1.0),
            math.log(max(f.r, 1.0) / max(r, 1.0)),
            math.log(max(f.r, 1.0)),
            math.log(noise),
            f.shape.residual,
            *f.shape.harmonics,
            f.shape.roughness,
            math.log(f.shape.strength / noise + 1e-3),
            f.shape.strength_spread,
            f.shape.coverage,
        )
        for f, (cx, cy, r) in zip(fits, np.asarray(starts)[:, :3], strict=True)
    ]
    return np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


#: State-dict keys, as the torch module that fits the score names its parameters.
STATE_KEYS = (
    "heat_weight",
    "bias",
    "bound",
    "mean",
    "std",
    "edge.0.weight",
    "edge.0.bias",
    "edge.2.weight",
    "edge.2.bias",
)


class Scorer:
    """Heat logit plus a bounded correction from the edge features; unfitted it is the heat.

    The correction is a one-hidden-layer MLP of the standardised features (ReLU), squashed by
    `bound * tanh(. / bound)`.
    """

    def __init__(self, n_features: int = len(FEATURE_NAMES), hidden: int = HIDDEN) -> None:
        self.heat_weight = 1.0
        self.bias = 0.0
        self.bound = BOUND
        self.mean = np.zeros(n_features)
        self.std = np.ones(n_features)
        self.hidden_weight = np.zeros((hidden, n_features))
        self.hidden_bias = np.zeros(hidden)
        self.out_weight = np.zeros((1, hidden))
        self.out_bias = np.zeros(1)

    def logits(self, heat_logit: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Score logits of (K,) heat logits and (K, F) features."""
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        hidden = np.maximum(x @ self.hidden_weight.T + self.hidden_bias, 0.0)
        shape = (hidden @ self.out_weight.T + self.out_bias)[:, 0]
        return self.heat_weight * heat_logit + self.bias + self.bound * np.tanh(shape / self.bound)

    def score(self, heat: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (K,) from raw heat (K,) and features (K, F)."""
        if len(heat) == 0:
            return np.zeros(0, dtype=np.float64)
        return sigmoid(self.logits(logit(heat), features))

    def best_possible(self, heat: np.ndarray) -> np.ndarray:
        """The highest score each heat could reach with the most circle-like edge."""
        return sigmoid(self.heat_weight * logit(heat) + self.bias + self.bound)

    def state_dict(self) -> dict[str, np.ndarray]:
        values = (
            self.heat_weight,
            self.bias,
            self.bound,
            self.mean,
            self.std,
            self.hidden_weight,
            self.hidden_bias,
            self.out_weight,
            self.out_bias,
        )
        return {k: np.array(v, dtype=np.float32) for k, v in zip(STATE_KEYS, values, strict=True)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Scorer:
        """From `state_dict()`, the fitting module's state dict (tensors) or JSON lists."""
        arrays = {k: np.asarray(state[k], dtype=np.float64) for k in STATE_KEYS}
        hidden, n_features = arrays["edge.0.weight"].shape
        scorer = cls(n_features=n_features, hidden=hidden)
        scorer.heat_weight = float(arrays["heat_weight"])
        scorer.bias = float(arrays["bias"])
        scorer.bound = float(arrays["bound"])
        scorer.mean, scorer.std = arrays["mean"], arrays["std"]
        scorer.hidden_weight, scorer.hidden_bias = arrays["edge.0.weight"], arrays["edge.0.bias"]
        scorer.out_weight, scorer.out_bias = arrays["edge.2.weight"], arrays["edge.2.bias"]
        return scorer
