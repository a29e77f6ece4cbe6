"""Shape coverage for the evaluation-only generator: supersampled implicit shapes in NumPy.

Written apart from the training generator on purpose (it shares no drawing code with it): a
shape is an `inside(x, y)` predicate over sub-pixel sample positions, and a pixel's coverage is
the mean of its `ss x ss` samples. Pixel centres sit at integer coordinates (the detector's and
the coins truth's convention), so pixel (row i, column j) spans [j - 0.5, j + 0.5] x [i - 0.5,
i + 0.5].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

Inside = Callable[[np.ndarray, np.ndarray], np.ndarray]

LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Patch:
    """A shape's coverage (alpha in [0, 1]) over the image window rows y0:y1, columns x0:x1."""

    y0: int
    y1: int
    x0: int
    x1: int
    alpha: np.ndarray

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x, y) of the window, shaped like `alpha`."""
        return np.meshgrid(
            np.arange(self.x0, self.x1, dtype=np.float64),
            np.arange(self.y0, self.y1, dtype=np.float64),
        )


def coverage(
    inside: Inside,
    box: tuple[float, float, float, float],
    shape: tuple[int, int],
    ss: int = 4,
) -> Patch | None:
    """Supersampled coverage of `inside` within `box` (x_min, y_min, x_max, y_max), or None."""
    h, w = shape
    x0, y0 = max(0, int(np.floor(box[0])) - 1), max(0, int(np.floor(box[1])) - 1)
    x1, y1 = min(w, int(np.ceil(box[2])) + 2), min(h, int(np.ceil(box[3])) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    offsets = (np.arange(ss) + 0.5) / ss - 0.5
    xs = (np.arange(x0, x1)[:, None] + offsets[None, :]).reshape(1, -1)
    ys = (np.arange(y0, y1)[:, None] + offsets[None, :]).reshape(-1, 1)
    hit = np.asarray(inside(xs, ys), dtype=np.float32)
    hit = np.broadcast_to(hit, (ys.shape[0], xs.shape[1]))
    alpha = hit.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    if not alpha.any():
        return None
    return Patch(y0, y1, x0, x1, alpha)


def disc(cx: float, cy: float, r: float) -> Inside:
    return lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 < r * r


def annulus(cx: float, cy: float, r_out: float, r_in: float) -> Inside:
    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d2 = (x - cx) ** 2 + (y - cy) ** 2
        return (d2 < r_out * r_out) & (d2 >= r_in * r_in)

    return inside


def ellipse(cx: float, cy: float, a: float, b: float, angle: float) -> Inside:
    c, s = np.cos(angle), np.sin(angle)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = (x - cx) * c + (y - cy) * s
        v = -(x - cx) * s + (y - cy) * c
        return (u / a) ** 2 + (v / b) ** 2 < 1.0

    return inside


def rounded_rect(
    cx: float, cy: float, half_w: float, half_h: float, corner: float, angle: float
) -> Inside:
    """A rotated rectangle whose corners are quarter circles of radius `corner`."""
    c, s = np.cos(angle), np.sin(angle)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        u = np.abs((x - cx) * c + (y - cy) * s) - (half_w - corner)
        v = np.abs(-(x - cx) * s + (y - cy) * c) - (half_h - corner)
        outside = np.hypot(np.maximum(u, 0), np.maximum(v, 0))
        return outside + np.minimum(np.maximum(u, v), 0) < corner

    return inside


def polygon(vertices: np.ndarray) -> Inside:
    """Even-odd rule over the polygon's edges (vertices (K, 2) of x, y)."""
    px, py = vertices[:, 0], vertices[:, 1]
    qx, qy = np.roll(px, -1), np.roll(py, -1)

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        odd = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
        for ax, ay, bx, by in zip(px, py, qx, qy, strict=True):
            if ay == by:
                continue
            crosses = (ay > y) != (by > y)
            x_at = ax + (y - ay) * (bx - ax) / (by - ay)
            odd ^= crosses & (x < x_at)
        return odd

    return inside


def segments(points: np.ndarray, width: float) -> Inside:
    """A polyline (points (K, 2)) stroked `width` wide with round joins."""
    half = width / 2.0

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        near = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=bool)
        for (ax, ay), (bx, by) in pairwise(points):
            dx, dy = bx - ax, by - ay
            t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
            near |= (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 < half * half
        return near

    return inside


def star_blob(cx: float, cy: float, radius: float, harmonics: np.ndarray, angle: float) -> Inside:
    """An irregular round-ish blob: r(t) = radius * (1 + sum a_k cos(k t + p_k)), k = 2, 3, ...

    `harmonics` rows are (amplitude, phase); an x-stretch by `angle`'s rotation is folded in by
    the caller through the amplitudes (k = 2 is an ellipse-like squash).
    """

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        t = np.arctan2(y - cy, x - cx) - angle
        edge = np.ones_like(t)
        for k, (amp, phase) in enumerate(harmonics, start=2):
            edge = edge + amp * np.cos(k * t + phase)
        return (x - cx) ** 2 + (y - cy) ** 2 < (radius * edge) ** 2

    return inside


def composite(canvas: np.ndarray, patch: Patch, colour: np.ndarray, opacity: float = 1.0) -> None:
    """Paint `colour` ((3,) or per-pixel (h, w, 3)) over `canvas` (H, W, 3) through the patch."""
    a = (patch.alpha * opacity)[..., None]
    region = canvas[patch.window]
    region[...] = region * (1.0 - a) + np.asarray(colour) * a


def luma(rgb: np.ndarray) -> np.ndarray:
    """Grey as the detector sees colour (ITU-R 601 weights, as in its image conversion)."""
    return np.asarray(rgb) @ LUMA


def colour_with_luma(rng: np.random.Generator, target: float, saturation: float) -> np.ndarray:
    """A random hue of the given saturation whose luma is (as near as clipping allows) `target`."""
    hue = rng.random(3)
    c = (1 - saturation) * 0.5 + saturation * hue
    for _ in range(4):
        c = np.clip(c + (target - luma(c)), 0.0, 1.0)
    return c
