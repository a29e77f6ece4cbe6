"""Sub-pixel refinement of a predicted circle by a robust least-squares fit to its edge.

The heatmap locates a circle to a fraction of its 4-pixel stride; the edge itself is measured
here. Along rays from the predicted centre the image is sampled at sub-pixel steps, the strongest
radial step near the predicted radius becomes an edge point (parabolic peak interpolation), and a
circle is fitted to those points with iterative outlier rejection, so occluders and neighbours
touching the circle do not pull it.

All the candidates of an image are refined together, as arrays of (candidate, ray, sample):
per-candidate Python and NumPy call overhead, not arithmetic, was what a refinement cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FINE_STEP = 0.25  # px between samples along a ray in the final pass
MIN_RAYS, MAX_RAYS = 24, 180  # rays per circle, about one per 1.5 px of circumference
#: Most (candidate, ray, sample) elements sampled at once; bounds the memory of huge circles.
CHUNK_ELEMENTS = 1_000_000


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


def masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median of each row's masked-in values (K, N) -> (K,); NaN for a row with none."""
    n = mask.sum(axis=1)
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(ordered, np.maximum(n // 2, 0)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, (lo + hi) / 2, np.nan)


def weighted_lstsq(design: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row k, the minimum-norm solution of the least squares problem weighted by weights[k]:
    design (K, N, P), target (K, N), weights (K, N) >= 0 (0 leaves a point out) -> (K, P)."""
    root = np.sqrt(weights)[..., None]
    return (np.linalg.pinv(design * root) @ (target[..., None] * root))[..., 0]


def fit_circles(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted algebraic (Kasa) circle fits: points (K, N, 2), weights (K, N) -> (K, 3) of
    (cx, cy, r); a weight of 0 leaves a point out."""
    total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    mean = (points * weights[..., None]).sum(axis=1, keepdims=True) / total[..., None]
    u, v = (points - mean).transpose(2, 0, 1)
    design = np.stack([u, v, np.ones_like(u)], axis=-1)
    cu, cv, c = weighted_lstsq(design, u**2 + v**2, weights).T
    cu, cv = cu / 2, cv / 2
    r = np.sqrt(np.maximum(c + cu**2 + cv**2, 1e-12))
    return np.stack([cu + mean[:, 0, 0], cv + mean[:, 0, 1], r], axis=1)


@dataclass(frozen=True)
class Edges:
    """One edge point per ray for each of K circles; rays padded to the most any circle has."""

    points: np.ndarray  # (K, R, 2)
    strength: np.ndarray  # (K, R) radial step at the edge point, of the circle's polarity
    usable: np.ndarray  # (K, R) a real ray, inside the image, with an edge of the polarity
    theta: np.ndarray  # (K, R) ray angles
    rays: np.ndarray  # (K,) real rays per circle


def edge_points(
    grey: np.ndarray, circles: np.ndarray, sigma: np.ndarray, step: np.ndarray
) -> Edges:
    """Along each circle's rays (circles (K, 3) of cx, cy, r), the strongest radial step of one
    polarity near r, weighted by a Gaussian prior of width sigma, sampled every step px."""
    r = circles[:, 2]
    rays = np.clip(np.round(2 * np.pi * r / 1.5), MIN_RAYS, MAX_RAYS).astype(np.int64)
    ray = np.arange(rays.max())
    theta = 2 * np.pi * ray[None, :] / rays[:, None]
    half_width = 3.0 * sigma + 2.0
    start = np.maximum(0.5, r - half_width)
    samples = np.ceil((r + half_width - start) / step).astype(np.int64)  # as np.arange
    k = len(circles)
    points = np.zeros((k, len(ray), 2))
    strength = np.zeros((k, len(ray)))
    usable = np.zeros((k, len(ray)), dtype=bool)
    # Chunks of similar sizes, each padded only to its own largest, so that padding wastes little
    # and memory stays bounded.
    order = np.argsort(samples, kind="stable")
    while len(order):
        padded = np.maximum.accumulate(samples[order]) * np.maximum.accumulate(rays[order])
        size = max(1, int(np.sum(np.arange(1, len(order) + 1) * padded <= CHUNK_ELEMENTS)))
        idx, order = order[:size], order[size:]
        grid = np.arange(samples[idx].max())
        t = start[idx, None] + step[idx, None] * grid[None, :]  # (k, S)
        valid_t = grid[None, :] < samples[idx, None]
        width = rays[idx].max()
        real_ray = ray[None, :width] < rays[idx, None]
        chunk = _chunk_edges(
            grey, circles[idx], sigma[idx], step[idx], t, valid_t, theta[idx, :width], real_ray
        )
        points[idx, :width], strength[idx, :width], usable[idx, :width] = chunk
    return Edges(points, strength, usable, theta, rays)


def _remap(grey: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear samples of grey at (map_x, map_y) of shape (K, R, S)."""
    k, r, s = map_x.shape
    flat_x, flat_y = map_x.reshape(k * r, s), map_y.reshape(k * r, s)
    rows = 30_000  # cv2.remap takes maps of fewer than 32767 rows
    parts = [
        cv2.remap(
            grey,
            flat_x[i : i + rows],
            flat_y[i : i + rows],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        for i in range(0, k * r, rows)
    ]
    return np.concatenate(parts).reshape(k, r, s)


def _chunk_edges(
    grey: np.ndarray,
    circles: np.ndarray,
    sigma: np.ndarray,
    step: np.ndarray,
    t: np.ndarray,
    valid_t: np.ndarray,
    theta: np.ndarray,
    real_ray: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cx, cy, r = (v[:, None, None] for v in circles.T)
    cos, sin = np.cos(theta), np.sin(theta)
    map_x = (cx + t[:, None, :] * cos[..., None]).astype(np.float32)
    map_y = (cy + t[:, None, :] * sin[..., None]).astype(np.float32)
    h, w = grey.shape
    outside = (map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)
    valid_ray = real_ray & ~(outside & valid_t[:, None, :]).any(axis=2)
    deriv = np.diff(_remap(grey, map_x, map_y), axis=2) / step[:, None, None]
    t_mid = (t[:, :-1] + t[:, 1:]) / 2
    valid_d = valid_t[:, 1:][:, None, :]
    prior = np.exp(-0.5 * ((t_mid - r[:, :, 0]) / sigma[:, None]) ** 2)[:, None, :]
    # One polarity per circle: bright-on-dark or dark-on-bright, decided by its rays.
    signed = deriv * prior
    rising = np.where(real_ray, np.where(valid_d, signed, -np.inf).max(axis=2), 0).sum(axis=1)
    falling = np.where(real_ray, -np.where(valid_d, signed, np.inf).min(axis=2), 0).sum(axis=1)
    polarity = np.where(rising >= falling, 1.0, -1.0)[:, None, None]
    score = np.where(valid_d, polarity * signed, -np.inf)
    peak = np.argmax(score, axis=2)[..., None]
    last = (valid_t.sum(axis=1) - 2)[:, None, None]
    s0 = np.take_along_axis(score, np.clip(peak - 1, 0, last), axis=2)[..., 0]
    s1 = np.take_along_axis(score, peak, axis=2)[..., 0]
    s2 = np.take_along_axis(score, np.clip(peak + 1, 0, last), axis=2)[..., 0]
    denom = s0 - 2 * s1 + s2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(np.abs(denom) > 1e-9, 0.5 * (s0 - s2) / denom, 0.0)
    shift = np.clip(np.nan_to_num(shift), -1.0, 1.0)
    radius = np.take_along_axis(t_mid, peak[..., 0], axis=1) + shift * step[:, None]
    strength = polarity[..., 0] * np.take_along_axis(deriv, peak, axis=2)[..., 0]
    points = np.stack([cx[..., 0] + radius * cos, cy[..., 0] + radius * sin], axis=-1)
    return points, strength, valid_ray & (strength > 0)


def edge_shapes(edges: Edges, circles: np.ndarray) -> list[EdgeShape]:
    """Measures of each circle's edge points against the circle (cx, cy, r) in circles (K, 3)."""
    usable = edges.usable
    count = usable.sum(axis=1)
    coverage = count / edges.rays
    deviation = np.hypot(*(edges.points - circles[:, None, :2]).transpose(2, 0, 1))
    deviation = deviation - circles[:, 2:3]
    theta = edges.theta
    basis = np.stack(
        [np.ones_like(theta)] + [f(k * theta) for k in (1, 2, 3, 4) for f in (np.cos, np.sin)],
        axis=-1,
    )
    coef = weighted_lstsq(basis, deviation, usable.astype(np.float64))
    scale = np.maximum(circles[:, 2], 1.0)
    unexplained = np.where(usable, deviation - (basis @ coef[..., None])[..., 0], 0.0)
    roughness = np.sqrt((unexplained**2).sum(axis=1) / np.maximum(count, 1))
    step = np.where(usable, edges.strength, 0.0)
    mean = step.sum(axis=1) / np.maximum(count, 1)
    spread = np.sqrt(
        np.where(usable, (step - mean[:, None]) ** 2, 0).sum(axis=1) / np.maximum(count, 1)
    )
    residual = masked_median(np.abs(deviation), usable) / scale
    strength = masked_median(edges.strength, usable)
    harmonics = np.hypot(coef[:, 3::2], coef[:, 4::2]) / scale[:, None]
    return [
        EdgeShape(
            residual=float(residual[i]),
            harmonics=tuple(float(h) for h in harmonics[i]),
            roughness=float(roughness[i]),
            strength=float(strength[i]),
            strength_spread=float(spread[i] / (mean[i] + 1e-6)),
            coverage=float(coverage[i]),
        )
        if count[i] >= 10
        else EdgeShape(coverage=float(coverage[i]))
        for i in range(len(circles))
    ]


def refine_circles(grey: np.ndarray, circles: np.ndarray, passes: int = 2) -> list[Refinement]:
    """Refine circles (K, 3) of (cx, cy, r) on a float grey image; each keeps its prediction
    when its fit is unreliable."""
    start = np.asarray(circles, dtype=np.float64).reshape(-1, 3)
    if len(start) == 0:
        return []
    fit = start.copy()
    alive = np.ones(len(start), dtype=bool)  # enough usable rays in every pass so far
    support = np.zeros(len(start))
    for pass_index in range(passes):
        # A wide, coarse search first, then a narrow one at a quarter pixel around its result.
        first = pass_index == 0 and passes > 1
        sigma = np.maximum(1.0, (0.15 if first else 0.04) * fit[:, 2])
        step = np.maximum(FINE_STEP, sigma / 4) if first else np.full(len(fit), FINE_STEP)
        edges = edge_points(grey, fit, sigma, step)
        alive &= edges.usable.sum(axis=1) >= 8
        inliers = edges.usable.copy()
        fitting = alive.copy()
        for _ in range(3):
            fitting &= inliers.sum(axis=1) >= 8
            if not fitting.any():
                break
            fit[fitting] = fit_circles(edges.points, np.where(inliers, edges.strength, 0.0))[
                fitting
            ]
            residual = np.abs(
                np.hypot(*(edges.points - fit[:, None, :2]).transpose(2, 0, 1)) - fit[:, 2:3]
            )
            mad = masked_median(residual, inliers)
            threshold = np.maximum(0.75, 3.0 * 1.4826 * np.nan_to_num(mad))
            inliers = np.where(
                fitting[:, None], edges.usable & (residual <= threshold[:, None]), inliers
            )
        support = inliers.sum(axis=1) / edges.rays
    moved = np.hypot(fit[:, 0] - start[:, 0], fit[:, 1] - start[:, 1])
    slack = 0.3 * start[:, 2] + 1.5
    accepted = (
        alive
        & (support >= 0.35)
        & (moved <= slack)
        & (np.abs(fit[:, 2] - start[:, 2]) <= slack)
        & (fit[:, 2] >= 1.0)
    )
    final = np.where(accepted[:, None], fit, start)
    shapes = edge_shapes(edges, final)
    return [
        Refinement(*map(float, final[i]), float(support[i]), bool(accepted[i]), shapes[i])
        if alive[i]
        else Refinement(*map(float, start[i]), 0.0, False)
        for i in range(len(start))
    ]


def refine_circle(grey: np.ndarray, cx: float, cy: float, r: float, passes: int = 2) -> Refinement:
    """Refine one circle (cx, cy, r); see `refine_circles`."""
    return refine_circles(grey, np.array([[cx, cy, r]]), passes)[0]
