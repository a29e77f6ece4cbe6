"""Sub-pixel refinement of a predicted circle by a robust least-squares fit to its edge.

The heatmap locates a circle to a fraction of its 4-pixel stride; the edge itself is measured
here. Along rays from the predicted centre the image is sampled at sub-pixel steps, the strongest
radial step near the predicted radius becomes an edge point (parabolic peak interpolation), and a
circle is fitted to those points with iterative outlier rejection, so occluders and neighbours
touching the circle do not pull it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FINE_STEP = 0.25  # px between samples along a ray in the final pass


@dataclass(frozen=True)
class EdgeShape:
    """How round and how strong the measured edge is: what the heatmap cannot see at stride 4.

    A small square, triangle or ellipse looks round to the network; its edge, measured at full
    resolution, departs from the fitted circle with 4, 3 or 2 cycles per turn.
    """

    residual: float = 0.0  # median |edge radius - r| / r over usable rays
    harmonics: tuple[float, float, float] = (0.0, 0.0, 0.0)  # 2, 3, 4 cycles per turn, / r
    roughness: float = 0.0  # rms px of what harmonics 0 to 4 leave unexplained
    strength: float = 0.0  # median edge step, grey levels per px
    strength_spread: float = 0.0  # coefficient of variation of the edge step over rays
    coverage: float = 0.0  # fraction of rays inside the image with an edge of the right polarity


@dataclass(frozen=True)
class Refinement:
    cx: float
    cy: float
    r: float
    support: float  # fraction of rays whose edge point agrees with the fitted circle, in [0, 1]
    accepted: bool  # False when the fit was unreliable and the prediction was kept
    shape: EdgeShape = EdgeShape()


def fit_circle(points: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float, float]:
    """Weighted algebraic (Kasa) circle fit; points (N, 2) -> (cx, cy, r)."""
    x, y = points[:, 0], points[:, 1]
    w = np.ones_like(x) if weights is None else weights
    mx, my = np.average(x, weights=w), np.average(y, weights=w)
    u, v = x - mx, y - my
    sw = np.sqrt(w)
    a = np.stack([u, v, np.ones_like(u)], axis=1) * sw[:, None]
    b = (u**2 + v**2) * sw
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cu, cv, c = sol[0] / 2, sol[1] / 2, sol[2]
    r2 = c + cu**2 + cv**2
    return float(cu + mx), float(cv + my), float(np.sqrt(max(r2, 1e-12)))


def edge_points(
    grey: np.ndarray, cx: float, cy: float, r: float, sigma: float, step: float = FINE_STEP
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge point per ray, its strength, and a mask of rays that stayed inside the image."""
    n_rays = int(np.clip(round(2 * np.pi * r / 1.5), 24, 180))
    half_width = 3.0 * sigma + 2.0
    t = np.arange(max(0.5, r - half_width), r + half_width, step, dtype=np.float32)
    theta = np.linspace(0, 2 * np.pi, n_rays, endpoint=False, dtype=np.float32)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    map_x = (cx + t[None, :] * cos).astype(np.float32)
    map_y = (cy + t[None, :] * sin).astype(np.float32)
    h, w = grey.shape
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    profile = cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    deriv = np.diff(profile, axis=1) / step
    t_mid = (t[:-1] + t[1:]) / 2
    valid_ray = inside.all(axis=1)
    prior = np.exp(-0.5 * ((t_mid - r) / sigma) ** 2)[None, :]
    # One polarity for the whole circle: bright-on-dark or dark-on-bright, decided by the rays.
    signed = deriv * prior
    polarity = 1.0 if np.sum(np.max(signed, axis=1)) >= np.sum(-np.min(signed, axis=1)) else -1.0
    score = polarity * signed
    peak = np.argmax(score, axis=1)
    rows = np.arange(n_rays)
    lo = np.clip(peak - 1, 0, score.shape[1] - 1)
    hi = np.clip(peak + 1, 0, score.shape[1] - 1)
    s0, s1, s2 = score[rows, lo], score[rows, peak], score[rows, hi]
    denom = s0 - 2 * s1 + s2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(np.abs(denom) > 1e-9, 0.5 * (s0 - s2) / denom, 0.0)
    shift = np.clip(np.nan_to_num(shift), -1.0, 1.0)
    radius = t_mid[peak] + shift * step
    strength = polarity * deriv[rows, peak]
    points = np.stack([cx + radius * cos[:, 0], cy + radius * sin[:, 0]], axis=1)
    return points, strength, valid_ray & (strength > 0)


def edge_shape(
    points: np.ndarray, strength: np.ndarray, usable: np.ndarray, cx: float, cy: float, r: float
) -> EdgeShape:
    """Measures of the edge points (one per ray, rays evenly spaced) against circle (cx, cy, r)."""
    if usable.sum() < 10:
        return EdgeShape(coverage=float(usable.mean()))
    theta = np.linspace(0, 2 * np.pi, len(points), endpoint=False)[usable]
    deviation = np.hypot(points[usable, 0] - cx, points[usable, 1] - cy) - r
    basis = np.stack(
        [np.ones_like(theta)] + [f(k * theta) for k in (1, 2, 3, 4) for f in (np.cos, np.sin)],
        axis=1,
    )
    coef, *_ = np.linalg.lstsq(basis, deviation, rcond=None)
    scale = max(r, 1.0)
    step = strength[usable]
    return EdgeShape(
        residual=float(np.median(np.abs(deviation))) / scale,
        harmonics=tuple(float(np.hypot(coef[2 * k - 1], coef[2 * k])) / scale for k in (2, 3, 4)),
        roughness=float(np.sqrt(np.mean((deviation - basis @ coef) ** 2))),
        strength=float(np.median(step)),
        strength_spread=float(np.std(step) / (np.mean(step) + 1e-6)),
        coverage=float(usable.mean()),
    )


def refine_circle(grey: np.ndarray, cx: float, cy: float, r: float, passes: int = 2) -> Refinement:
    """Refine (cx, cy, r) on a float grey image; keeps the prediction when the fit is unreliable."""
    cx0, cy0, r0 = cx, cy, r
    support = 0.0
    for pass_index in range(passes):
        # A wide, coarse search first, then a narrow one at a quarter pixel around its result.
        first = pass_index == 0 and passes > 1
        sigma = max(1.0, (0.15 if first else 0.04) * r)
        step = max(FINE_STEP, sigma / 4) if first else FINE_STEP
        points, strength, usable = edge_points(grey, cx, cy, r, sigma, step)
        if usable.sum() < 8:
            return Refinement(cx0, cy0, r0, 0.0, False)
        pts, wts = points[usable], strength[usable]
        inliers = np.ones(len(pts), dtype=bool)
        fit = (cx, cy, r)
        for _ in range(3):
            if inliers.sum() < 8:
                break
            fit = fit_circle(pts[inliers], wts[inliers])
            residual = np.abs(np.hypot(pts[:, 0] - fit[0], pts[:, 1] - fit[1]) - fit[2])
            mad = np.median(residual[inliers])
            inliers = residual <= max(0.75, 3.0 * 1.4826 * mad)
        support = float(inliers.sum()) / len(points)
        cx, cy, r = fit
    moved = np.hypot(cx - cx0, cy - cy0)
    if support < 0.35 or moved > 0.3 * r0 + 1.5 or abs(r - r0) > 0.3 * r0 + 1.5 or r < 1.0:
        return Refinement(
            cx0, cy0, r0, support, False, edge_shape(points, strength, usable, cx0, cy0, r0)
        )
    return Refinement(cx, cy, r, support, True, edge_shape(points, strength, usable, cx, cy, r))
