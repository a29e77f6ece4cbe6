"""Turning the network's dense outputs into candidate circles (CenterNet max-pool NMS)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .network import STRIDE


def decode_candidates(
    heatmap_logits: torch.Tensor,
    offset: torch.Tensor,
    log_radius: torch.Tensor,
    max_candidates: int = 100,
    min_score: float = 0.05,
) -> list[np.ndarray]:
    """Peaks of the heatmap as circles in network-input pixels.

    Returns one float32 array (K, 4) per image with rows (cx, cy, r, raw_score); a cell is a peak
    when it equals the maximum of its 3x3 neighbourhood.
    """
    heat = torch.sigmoid(heatmap_logits)
    peaks = F.max_pool2d(heat, 3, stride=1, padding=1)
    heat = torch.where(peaks == heat, heat, torch.zeros_like(heat))
    n, _, h, w = heat.shape
    k = min(max_candidates, h * w)
    scores, index = heat.view(n, -1).topk(k, dim=1)
    ys = torch.div(index, w, rounding_mode="floor")
    xs = index % w
    off = offset.view(n, 2, -1)
    radius = log_radius.view(n, -1)
    results = []
    for i in range(n):
        keep = scores[i] >= min_score
        idx = index[i][keep]
        cx = (xs[i][keep].float() + off[i, 0, idx]) * STRIDE
        cy = (ys[i][keep].float() + off[i, 1, idx]) * STRIDE
        r = torch.exp(radius[i, idx]) * STRIDE
        rows = torch.stack([cx, cy, r, scores[i][keep]], dim=1)
        results.append(rows.detach().cpu().numpy().astype(np.float32))
    return results


def circle_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact intersection-over-union of every pair of discs; rows (cx, cy, r) of `a` against `b`."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    r1 = np.broadcast_to(a[:, None, 2], d.shape)
    r2 = np.broadcast_to(b[None, :, 2], d.shape)
    area1 = np.pi * r1**2
    area2 = np.pi * r2**2
    inter = np.zeros_like(d)
    contained = d <= np.abs(r1 - r2)
    inter[contained] = np.minimum(area1, area2)[contained]
    partial = (d < r1 + r2) & ~contained
    if partial.any():
        dp, p1, p2 = d[partial], r1[partial], r2[partial]
        c1 = np.clip((dp**2 + p1**2 - p2**2) / (2 * dp * p1), -1.0, 1.0)
        c2 = np.clip((dp**2 + p2**2 - p1**2) / (2 * dp * p2), -1.0, 1.0)
        lens = (-dp + p1 + p2) * (dp + p1 - p2) * (dp - p1 + p2) * (dp + p1 + p2)
        inter[partial] = (
            p1**2 * np.arccos(c1) + p2**2 * np.arccos(c2) - 0.5 * np.sqrt(np.clip(lens, 0, None))
        )
    union = area1 + area2 - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def circle_nms(circles: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression on exact circle IoU; rows (cx, cy, r, score), best first."""
    if len(circles) == 0:
        return circles
    order = np.argsort(-circles[:, 3], kind="stable")
    circles = circles[order]
    iou = circle_iou_matrix(circles[:, :3], circles[:, :3])
    keep = np.ones(len(circles), dtype=bool)
    for i in range(len(circles)):
        if keep[i]:
            keep[i + 1 :] &= iou[i, i + 1 :] < iou_threshold
    return circles[keep]
