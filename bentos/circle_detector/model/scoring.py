"""The confidence score: the probability that a refined candidate is a real circle.

At stride 4 the heatmap cannot tell a small polygon, ellipse or blob from a circle; the
refinement measures the edge at full resolution and can. The score is therefore

    sigmoid(a * logit(heat) + c + bound * tanh(mlp(edge features) / bound))

fitted by log loss on fresh scenes, so it is calibrated: 0.5 means "more likely than not". The
edge term is bounded, so a candidate whose heat cannot reach a threshold whatever its edge looks
like is skipped before the (comparatively costly) refinement.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

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
#: Largest change, in logits, that the edge can make to the heat's score. Tight enough that at
#: the operating point only candidates with heat above about 0.25 need refining.
BOUND = 2.0
#: The noise estimate looks at about this many pixels, whatever the image size.
NOISE_SAMPLES = 65_536


def image_noise(grey: np.ndarray) -> float:
    """Robust estimate of the image's pixel noise (grey levels), from its Laplacian's MAD."""
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    stride = max(1, int(math.sqrt(lap.size / NOISE_SAMPLES)))
    lap = lap[::stride, ::stride]
    mad = float(np.median(np.abs(lap - np.median(lap))))
    # The 3x3 Laplacian of white noise of std s has std s * sqrt(20).
    return 1.4826 * mad / math.sqrt(20.0) + 1e-3


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


class Scorer(nn.Module):
    """Heat logit plus a bounded correction from the edge features; untrained it is the heat."""

    def __init__(self, n_features: int = len(FEATURE_NAMES), hidden: int = HIDDEN) -> None:
        super().__init__()
        self.heat_weight = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("bound", torch.tensor(BOUND))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.edge = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.edge[2].weight)
        nn.init.zeros_(self.edge[2].bias)

    def forward(self, heat_logit: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Score logits of (K,) heat logits and (K, F) features."""
        shape = self.edge((features - self.mean) / self.std)[:, 0]
        return (
            self.heat_weight * heat_logit + self.bias + self.bound * torch.tanh(shape / self.bound)
        )

    @torch.inference_mode()
    def score(self, heat: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (K,) from raw heat (K,) and features (K, F)."""
        if len(heat) == 0:
            return np.zeros(0, dtype=np.float64)
        z = self(
            torch.as_tensor(logit(heat), dtype=torch.float32),
            torch.as_tensor(features, dtype=torch.float32),
        )
        return torch.sigmoid(z).double().numpy()

    def best_possible(self, heat: np.ndarray) -> np.ndarray:
        """The highest score each heat could reach with the most circle-like edge."""
        a, c, bound = (float(v.detach()) for v in (self.heat_weight, self.bias, self.bound))
        z = a * logit(heat) + c + bound
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Scorer:
        scorer = cls(n_features=len(state["mean"]), hidden=state["edge.0.weight"].shape[0])
        scorer.load_state_dict(state)
        return scorer.eval()
