"""Training targets on the heatmap grid: centre splats, offsets, log radii, ignore masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.network import STRIDE


@dataclass
class Targets:
    heatmap: np.ndarray  # (h, w) float32 in [0, 1]; 1 exactly at each centre cell
    weight: np.ndarray  # (h, w) float32; 0 around difficult circles
    index: np.ndarray  # (M,) int64 flat cell index of each required circle
    offset: np.ndarray  # (M, 2) float32 sub-cell offset in [0, 1)
    log_radius: np.ndarray  # (M,) float32 log(r / STRIDE)


def splat_sigma(r: float) -> float:
    """Gaussian size in cells: wider for big circles, whose centre tolerates more error."""
    return max(0.7, r / 40.0)


def build_targets(shape: tuple[int, int], circles: np.ndarray, difficult: np.ndarray) -> Targets:
    """Targets for an image of `shape` (H, W) with circles (K, 3) in its pixels."""
    h, w = shape[0] // STRIDE, shape[1] // STRIDE
    heat = np.zeros((h, w), dtype=np.float32)
    weight = np.ones((h, w), dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    index, offset, log_radius = [], [], []
    for (cx, cy, r), hard in zip(circles, difficult, strict=True):
        gx, gy = cx / STRIDE, cy / STRIDE
        col, row = int(np.floor(gx)), int(np.floor(gy))
        sigma = splat_sigma(float(r))
        if hard:
            near = (xx - gx) ** 2 + (yy - gy) ** 2 <= (2.5 * sigma + 1) ** 2
            weight[near] = 0.0
            continue
        if not (0 <= col < w and 0 <= row < h):
            continue
        g = np.exp(-((xx - col) ** 2 + (yy - row) ** 2) / (2 * sigma**2))
        np.maximum(heat, g, out=heat)
        heat[row, col] = 1.0
        index.append(row * w + col)
        offset.append((gx - col, gy - row))
        log_radius.append(np.log(r / STRIDE))
    # A required centre is never ignored, even when a difficult circle lies next to it.
    weight[heat >= 1.0] = 1.0
    return Targets(
        heat,
        weight,
        np.asarray(index, dtype=np.int64),
        np.asarray(offset, dtype=np.float32).reshape(-1, 2),
        np.asarray(log_radius, dtype=np.float32),
    )
