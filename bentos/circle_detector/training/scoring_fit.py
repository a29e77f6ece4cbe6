"""Fitting the confidence score on fresh scenes, after the network is trained."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from ..model.decoding import circle_iou_matrix
from ..model.detector import CircleDetector, prepare
from ..model.scoring import BOUND, FEATURE_NAMES, HIDDEN, Scorer, logit
from .synthetic import Scene

EPOCHS = 800
LR = 1e-2


class TorchScorer(nn.Module):
    """`Scorer`'s function as a torch module, for fitting; `to_scorer` hands it to serving."""

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

    def to_scorer(self) -> Scorer:
        return Scorer.from_state_dict({k: v.detach() for k, v in self.state_dict().items()})


def candidate_table(
    detector: CircleDetector, scenes: list[Scene]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every refined candidate's heat, edge features and label (1: within IoU 0.5 of a
    required circle); candidates on difficult circles are left out, as in the metrics."""
    heats, feats, labels = [], [], []
    for scene in tqdm(scenes, desc="score candidates", unit="scene", leave=False):
        p = prepare(scene.image, detector.max_side)
        refined, features = detector.measure(p, detector.candidates([p])[0])
        if len(refined) == 0:
            continue
        label = np.zeros(len(refined), dtype=bool)
        keep = np.ones(len(refined), dtype=bool)
        if len(scene.circles):
            iou = circle_iou_matrix(refined[:, :3], scene.circles)
            best = iou.argmax(axis=1)
            hit = iou.max(axis=1) >= 0.5
            label = hit & ~scene.difficult[best]
            keep = ~(hit & scene.difficult[best])
        heats.append(refined[keep, 3])
        feats.append(features[keep])
        labels.append(label[keep])
    if not heats:
        return np.zeros(0), np.zeros((0, 0)), np.zeros(0, dtype=bool)
    return np.concatenate(heats), np.concatenate(feats), np.concatenate(labels)


def expected_calibration_error(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> float:
    which = np.clip((prob * bins).astype(int), 0, bins - 1)
    return float(
        sum(
            abs(prob[which == k].mean() - label[which == k].mean()) * (which == k).mean()
            for k in range(bins)
            if (which == k).any()
        )
    )


def fit_scorer(detector: CircleDetector, scenes: list[Scene], seed: int = 0) -> tuple[Scorer, dict]:
    """A `Scorer` fitted by log loss to the detector's own candidates on `scenes`."""
    heat, features, label = candidate_table(detector, scenes)
    if len(heat) == 0 or label.all() or not label.any():  # nothing to tell apart: keep the heat
        return Scorer(), {"candidates": len(heat), "positives": int(label.sum()), "ece": None}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = TorchScorer(n_features=features.shape[1])
    x = torch.as_tensor(features, dtype=torch.float32)
    h = torch.as_tensor(logit(heat), dtype=torch.float32)
    y = torch.as_tensor(label, dtype=torch.float32)
    module.mean.copy_(x.mean(0))
    module.std.copy_(x.std(0).clamp(min=1e-6))
    opt = torch.optim.Adam(module.parameters(), lr=LR, weight_decay=1e-4)
    module.train()
    for _ in tqdm(range(EPOCHS), desc="fit score", unit="epoch", leave=False):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(module(h, x), y)
        loss.backward()
        opt.step()
    scorer = module.eval().to_scorer()
    prob = scorer.score(heat, features)
    stats = {
        "candidates": len(heat),
        "positives": int(label.sum()),
        "log_loss": round(loss.item(), 5),
        "ece": expected_calibration_error(prob, label.astype(np.float64)),
    }
    return scorer, stats
