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

import math
from dataclasses import dataclass

import cv2
import numpy as np

FINE_STEP = 0.25  # px between samples along a ray in the final pass
MIN_RAYS, MAX_RAYS = 24, 180  # rays per circle, about one per 1.5 px of circumference
#: Most (candidate, ray, sample) elements sampled at once; bounds the memory of huge circles.
CHUNK_ELEMENTS = 1_000_000
#: What one more chunk costs (NumPy call overhead), in sampled elements' worth of arithmetic.
CHUNK_OVERHEAD_ELEMENTS = 12_000


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


def fit_circles(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted algebraic (Kasa) circle fits: points (K, N, 2), weights (K, N) -> (K, 3) of
    (cx, cy, r); a weight of 0 leaves a point out.

    About the weighted mean the normal equations of u^2 + v^2 = 2a u + 2b v + c decouple: c is
    the weighted mean of u^2 + v^2 and (a, b) solve a 2x2 system, so each fit is closed form.
    Collinear points (no circle) get a = b = 0, as the minimum-norm least-squares solution does.
    """
    total = np.maximum(weights.sum(axis=1), 1e-12)
    mean = np.einsum("kn,knd->kd", weights, points) / total[:, None]
    u = points[..., 0] - mean[:, None, 0]
    v = points[..., 1] - mean[:, None, 1]
    t = u * u + v * v
    wu, wv = weights * u, weights * v
    suu, svv, suv = (wu * u).sum(1), (wv * v).sum(1), (wu * v).sum(1)
    sut, svt = (wu * t).sum(1), (wv * t).sum(1)
    c = (weights * t).sum(1) / total
    det = suu * svv - suv * suv
    solvable = det > 1e-12 * np.maximum(suu * svv, 1e-300)
    safe = np.where(solvable, det, 1.0)
    cu = np.where(solvable, (svv * sut - suv * svt) / safe, 0.0) / 2
    cv = np.where(solvable, (suu * svt - suv * sut) / safe, 0.0) / 2
    r = np.sqrt(np.maximum(c + cu**2 + cv**2, 1e-12))
    return np.stack([cu + mean[:, 0], cv + mean[:, 1], r], axis=1)


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
    for idx in size_groups(rays, samples):
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


def size_groups(rays: np.ndarray, samples: np.ndarray) -> list[np.ndarray]:
    """Split circles into chunks that are sampled together, each padded to its own largest.

    Sorted by size, a chunk's padded cost is its count times its largest rays x samples; the
    split minimises the padded elements plus a fixed overhead per chunk (dynamic programming
    over the sorted order), within CHUNK_ELEMENTS per chunk. A 6 px circle padded to a 120 px
    one's samples wastes most of the arithmetic; one chunk per circle wastes the call overhead.
    """
    order = np.argsort(rays * samples, kind="stable")
    # Rays and samples both grow with the radius, so a prefix's largest is near its end.
    width = np.maximum.accumulate(rays[order]).tolist()
    depth = np.maximum.accumulate(samples[order]).tolist()
    n = len(order)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        size = width[end - 1] * depth[end - 1]
        for begin in range(end - 1, -1, -1):
            padded = (end - begin) * size
            if padded > CHUNK_ELEMENTS and begin < end - 1:
                break
            cost = best[begin] + CHUNK_OVERHEAD_ELEMENTS + padded
            if cost < best[end]:
                best[end], cut[end] = cost, begin
    groups = []
    end = n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


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
    # A ray is a segment and the image a convex rectangle: it stays inside when both ends do.
    ends = np.stack([t[:, 0], t[np.arange(len(t)), valid_t.sum(axis=1) - 1]], axis=1)
    ends_x = (cx + ends[:, None, :] * cos[..., None]).astype(np.float32)  # as map_x computes
    ends_y = (cy + ends[:, None, :] * sin[..., None]).astype(np.float32)
    outside = ((ends_x < 0) | (ends_x > w - 1) | (ends_y < 0) | (ends_y > h - 1)).any(axis=2)
    valid_ray = real_ray & ~outside
    deriv = np.diff(_remap(grey, map_x, map_y), axis=2) / step[:, None, None]
    t_mid = (t[:, :-1] + t[:, 1:]) / 2
    valid_d = valid_t[:, 1:][:, None, :]
    prior = np.exp(-0.5 * ((t_mid - r[:, :, 0]) / sigma[:, None]) ** 2)[:, None, :]
    # One polarity per circle: bright-on-dark or dark-on-bright, decided by its rays.
    score = deriv * prior
    rising = score.max(axis=2, where=valid_d, initial=-np.inf).sum(axis=1, where=real_ray)
    falling = -score.min(axis=2, where=valid_d, initial=np.inf).sum(axis=1, where=real_ray)
    polarity = np.where(rising >= falling, 1.0, -1.0)[:, None, None]
    score *= polarity
    np.copyto(score, -np.inf, where=~valid_d)
    peak = np.argmax(score, axis=2)
    # Gathers along the sample axis as flat indices: (candidate, ray) rows of S samples each.
    k, rays, samples = score.shape
    row = np.arange(k * rays).reshape(k, rays) * samples
    last = (valid_t.sum(axis=1) - 2)[:, None]
    flat = score.reshape(-1)
    s0 = flat[row + np.clip(peak - 1, 0, last)]
    s1 = flat[row + peak]
    s2 = flat[row + np.clip(peak + 1, 0, last)]
    denom = s0 - 2 * s1 + s2
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(np.abs(denom) > 1e-9, 0.5 * (s0 - s2) / denom, 0.0)
    np.clip(shift, -1.0, 1.0, out=shift)
    shift[np.isnan(shift)] = 0.0
    radius = t_mid.reshape(-1)[np.arange(k)[:, None] * samples + peak] + shift * step[:, None]
    strength = polarity[..., 0] * deriv.reshape(-1)[row + peak]
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
    # Harmonics are measured only with 10 usable rays or more: at distinct angles, those make
    # the 9 x 9 normal equations of a degree-4 trigonometric fit regular.
    coef = np.zeros((len(circles), basis.shape[2]))
    measured = count >= 10
    if measured.any():
        weighted = (basis[measured] * usable[measured, :, None]).transpose(0, 2, 1)
        normal = weighted @ basis[measured]
        coef[measured] = np.linalg.solve(normal, weighted @ deviation[measured, :, None])[..., 0]
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
