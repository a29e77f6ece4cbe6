"""Turning the network's dense outputs into candidate circles (CenterNet max-pool NMS).

NumPy and OpenCV only: serving never imports torch, whichever runtime ran the network.
"""

from __future__ import annotations

import cv2
import numpy as np

from .spec import STRIDE

_NEIGHBOURHOOD = np.ones((3, 3), dtype=np.uint8)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, in the input's precision, without overflow warnings."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def decode_candidates(
    heatmap_logits: np.ndarray,
    offset: np.ndarray,
    log_radius: np.ndarray,
    max_candidates: int = 100,
    min_score: float = 0.05,
) -> list[np.ndarray]:
    """Peaks of the heatmap as circles in network-input pixels.

    Inputs are the network's outputs, (N, 1, H, W), (N, 2, H, W) and (N, 1, H, W). Returns one
    float32 array (K, 4) per image with rows (cx, cy, r, raw_score), best first; a cell is a
    peak when it equals the maximum of its 3x3 neighbourhood (cells outside count as -inf).
    """
    heat = sigmoid(np.asarray(heatmap_logits, dtype=np.float32)[:, 0])
    results = []
    for i in range(len(heat)):
        peaks = cv2.dilate(heat[i], _NEIGHBOURHOOD)  # 3x3 max pool; the border never wins
        flat = np.where(peaks == heat[i], heat[i], 0.0).ravel()
        index = np.flatnonzero(flat >= min_score)
        if len(index) > max_candidates:
            index = index[np.argpartition(-flat[index], max_candidates - 1)[:max_candidates]]
        index = index[np.argsort(-flat[index], kind="stable")]
        ys, xs = np.divmod(index, heat.shape[2])
        cx = (xs + offset[i, 0].ravel()[index]) * STRIDE
        cy = (ys + offset[i, 1].ravel()[index]) * STRIDE
        r = np.exp(log_radius[i, 0].ravel()[index]) * STRIDE
        results.append(np.stack([cx, cy, r, flat[index]], axis=1).astype(np.float32))
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
