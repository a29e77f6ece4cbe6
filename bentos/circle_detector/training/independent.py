"""An evaluation-only scene generator, independent of the training one by construction.

It shares no code path with `training.synthetic` (a test checks that no module of it imports
that one): its own supersampled NumPy rendering (`independent_draw`), its own backgrounds
(`independent_backgrounds`) and degradations (`independent_degrade`), its own fills, drop
shadows, highlights and distractors, varied and non-square image sizes, colour and grey
scenes. It exists to measure how the detector generalises and must never be used to train or
tune on.

Labels: per circle its outer edge (cx, cy, r) with pixel centres at integer coordinates (as the
detector and `data/coins_truth.json`), its fill kind, its polarity against its surroundings,
the visible fraction of its disc, and `difficult` when less than 60 % of it is visible
(occluded or cut by the border). Per scene: background and degradation kind, colour or grey.
Every scene is seeded by (seed, index), so a set is the same whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from .independent_backgrounds import BACKGROUNDS, GROUP
from .independent_degrade import DEGRADATIONS
from .independent_draw import (
    Patch,
    annulus,
    colour_with_luma,
    composite,
    coverage,
    disc,
    ellipse,
    luma,
    polygon,
    rounded_rect,
    segments,
)

#: Seeds used nowhere else in the repository (the hard set is 424242, training 0).
INDEPENDENT_SEED = 7_130_501
NEGATIVE_SEED = 7_130_977
INDEPENDENT_SCENES = 300
NEGATIVE_SCENES = 100
DIFFICULT_BELOW = 0.6
SIZE_RANGE = (320, 512)
FILLS = (
    "solid",
    "ring_thin",
    "ring_thick",
    "gradient",
    "shaded",
    "textured",
    "outlined",
    "inverted",
    "translucent",
)
DISTRACTORS = ("ellipse", "rounded_rect", "polygon", "line", "text")
RADIUS_BANDS = ((0.42, 4.0, 15.0), (0.35, 15.0, 45.0), (0.23, 45.0, 150.0))


@dataclass(frozen=True)
class Scene:
    """One evaluation image (uint8 (H, W, 3) colour or (H, W) grey) and its labels."""

    image: np.ndarray
    circles: np.ndarray  # (N, 3) cx, cy, r
    difficult: np.ndarray  # (N,) bool
    visible: np.ndarray  # (N,) visible fraction of each disc
    fills: tuple[str, ...]
    polarity: tuple[str, ...]  # "light" or "dark" against the surroundings
    shadow: np.ndarray  # (N,) bool: a soft drop shadow beside it
    highlight: np.ndarray  # (N,) bool: a specular highlight on it
    background: str
    degradation: str
    colour: bool

    @property
    def background_group(self) -> str:
        return GROUP[self.background]


@dataclass
class _Layer:
    """What was painted, for occlusion bookkeeping: its coverage and, for circles, the disc."""

    drawn: Patch
    opacity: float
    circle: int | None = None
    disc: Patch | None = None


def _surroundings(canvas: np.ndarray, cx: float, cy: float, reach: float) -> tuple[float, float]:
    """Mean and spread of the luma around (cx, cy), where a shape is about to go."""
    h, w = canvas.shape[:2]
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    if y1 <= y0 or x1 <= x0:
        return 0.5, 0.0
    window = luma(canvas[y0:y1, x0:x1])
    return float(window.mean()), float(window.std())


def _contrasting(
    rng: np.random.Generator, mean: float, spread: float, lo: float, hi: float, sign: int = 0
) -> tuple[float, int]:
    """A luma `lo..hi` (plus the local spread) away from `mean`, and its side (+1 / -1)."""
    delta = rng.uniform(lo, hi) + min(spread, 0.2)
    room = {1: 0.98 - mean, -1: mean - 0.02}
    if sign == 0:
        fits = [s for s in (1, -1) if room[s] >= delta]
        sign = int(rng.choice(fits)) if fits else max(room, key=room.get)
    return float(np.clip(mean + sign * delta, 0.0, 1.0)), sign


def _sample_radius(rng: np.random.Generator, cap: float) -> float:
    u, edge = rng.random(), 0.0
    for share, lo, hi in RADIUS_BANDS:
        edge += share
        if u < edge:
            return float(min(np.exp(rng.uniform(np.log(lo), np.log(hi))), cap))
    return float(min(RADIUS_BANDS[-1][2], cap))


def _place_circles(rng: np.random.Generator, count: int, h: int, w: int) -> list[tuple]:
    """Centres and radii: partial overlaps, never one inside another; some cut by the border."""
    placed: list[tuple[float, float, float]] = []
    cap = 0.45 * min(h, w)
    for _ in range(count):
        r = _sample_radius(rng, cap)
        for _ in range(40):
            if rng.random() < 0.85:
                cx, cy = rng.uniform(r, w - 1 - r), rng.uniform(r, h - 1 - r)
            else:
                cx, cy = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
            if all(
                np.hypot(cx - x, cy - y) >= max(0.8 * (r + q), abs(r - q) + 0.6 * min(r, q))
                for x, y, q in placed
            ):
                placed.append((cx, cy, r))
                break
    return placed


def _shadow(
    rng: np.random.Generator, canvas: np.ndarray, cx: float, cy: float, r: float, light: float
) -> None:
    """A soft dark copy of the disc offset away from the light, painted before the disc."""
    shift = r * rng.uniform(0.1, 0.3)
    sx, sy = cx - shift * np.cos(light), cy - shift * np.sin(light)
    sigma = max(0.8, r * rng.uniform(0.06, 0.2))
    reach = r + 3 * sigma + 2
    patch = coverage(
        disc(sx, sy, r), (sx - reach, sy - reach, sx + reach, sy + reach), canvas.shape[:2]
    )
    if patch is None:
        return
    soft = ndimage.gaussian_filter(patch.alpha, sigma, mode="constant")
    tint = canvas[patch.window].mean(axis=(0, 1)) * rng.uniform(0.1, 0.4)
    composite(
        canvas, Patch(patch.y0, patch.y1, patch.x0, patch.x1, soft), tint, rng.uniform(0.4, 0.75)
    )


def _highlight(
    rng: np.random.Generator,
    canvas: np.ndarray,
    body: Patch,
    cx: float,
    cy: float,
    r: float,
    light: float,
) -> None:
    """A specular spot towards the light, kept inside the disc."""
    hx, hy = cx + 0.4 * r * np.cos(light), cy + 0.4 * r * np.sin(light)
    sigma = r * rng.uniform(0.1, 0.22)
    x, y = body.pixel_grid()
    spot = np.exp(-((x - hx) ** 2 + (y - hy) ** 2) / (2 * sigma**2)) * rng.uniform(0.4, 0.85)
    composite(canvas, Patch(body.y0, body.y1, body.x0, body.x1, spot * body.alpha), np.ones(3))


def _two_tone(
    rng: np.random.Generator, mean: float, spread: float, sign: int, saturation: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Two colours on the same side of the surroundings, one far and one nearer."""
    near, sign = _contrasting(rng, mean, spread, 0.16, 0.25, sign)
    far, _ = _contrasting(rng, mean, spread, 0.35, 0.6, sign)
    hue = colour_with_luma(rng, 0.5, saturation)
    return hue + (near - 0.5), hue + (far - 0.5), sign


def _draw_circle(
    rng: np.random.Generator, canvas: np.ndarray, cx: float, cy: float, r: float, fill: str
) -> tuple[Patch | None, Patch | None, float, int]:
    """Paint one circle; returns what it covers, its disc, its opacity and its polarity."""
    shape = canvas.shape[:2]
    ss = 8 if r < 16 else 4
    box = (cx - r, cy - r, cx + r, cy + r)
    body = coverage(disc(cx, cy, r), box, shape, ss)
    if body is None:
        return None, None, 1.0, 0
    mean, spread = _surroundings(canvas, cx, cy, 1.3 * r + 2)
    lo = 0.25 if r < 15 else 0.2
    sat = rng.uniform(0.0, 0.8)
    if fill in ("ring_thin", "ring_thick"):
        width = rng.uniform(1.2, 2.5) if fill == "ring_thin" else r * rng.uniform(0.25, 0.5)
        width = min(width, 0.6 * r)
        ring = coverage(annulus(cx, cy, r, r - width), box, shape, ss)
        target, sign = _contrasting(rng, mean, spread, lo + 0.05, 0.6)
        if ring is not None:
            composite(canvas, ring, colour_with_luma(rng, target, sat))
        return ring, body, 1.0, sign
    if fill == "translucent":
        target, sign = _contrasting(rng, mean, spread, 0.45, 0.75)
        opacity = float(np.clip(rng.uniform(0.3, 0.45) / max(abs(target - mean), 1e-3), 0.4, 0.9))
        composite(canvas, body, colour_with_luma(rng, target, sat), opacity)
        return body, body, opacity, sign
    if fill == "inverted":
        negative = 1.0 - canvas[body.window]
        target, sign = _contrasting(rng, mean, spread, lo, 0.5)
        inside = body.alpha > 0.5
        level = float(luma(negative[inside]).mean()) if inside.any() else 0.5
        composite(canvas, body, np.clip(negative + (target - level), 0, 1))
        return body, body, 1.0, sign
    if fill == "outlined":
        inner, _ = _contrasting(rng, mean, 0.0, 0.0, 0.1)
        composite(canvas, body, colour_with_luma(rng, inner, sat))
        width = min(rng.uniform(1.2, 3.5), 0.4 * r)
        line, sign = _contrasting(rng, inner, spread, 0.3, 0.6)
        edge = coverage(annulus(cx, cy, r, r - width), box, shape, ss)
        if edge is not None:
            composite(canvas, edge, colour_with_luma(rng, line, sat))
        return body, body, 1.0, sign
    x, y = body.pixel_grid()
    if fill in ("gradient", "shaded"):
        a, b, sign = _two_tone(rng, mean, spread, 0, sat)
        if fill == "gradient":
            t = rng.uniform(0, 2 * np.pi)
            s = np.clip(((x - cx) * np.cos(t) + (y - cy) * np.sin(t)) / (2 * r) + 0.5, 0, 1)
        else:  # a lit sphere: Lambert shading towards a random light
            lx, ly = (
                np.cos(rng.uniform(0, 2 * np.pi)) * 0.6,
                np.sin(rng.uniform(0, 2 * np.pi)) * 0.6,
            )
            nx, ny = (x - cx) / r, (y - cy) / r
            nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
            s = np.clip((nx * lx + ny * ly + nz * 0.53) / 1.0, 0, 1)
        composite(canvas, body, np.clip(a + (b - a) * s[..., None], 0, 1))
        return body, body, 1.0, sign
    target, sign = _contrasting(rng, mean, spread, lo, 0.55)
    colour = colour_with_luma(rng, target, sat)
    if fill == "textured":
        grain = ndimage.gaussian_filter(
            rng.standard_normal(body.alpha.shape), rng.uniform(0.6, 2.0)
        )
        grain = grain / max(float(grain.std()), 1e-9) * rng.uniform(0.05, 0.12)
        composite(canvas, body, np.clip(colour + grain[..., None], 0, 1))
    else:
        composite(canvas, body, colour)
    return body, body, 1.0, sign


def _draw_distractor(rng: np.random.Generator, canvas: np.ndarray, kind: str) -> list[Patch]:
    """Paint one non-circle (an ellipse, rounded rectangle, polygon, line or text strokes)."""
    h, w = canvas.shape[:2]
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    size = float(np.exp(rng.uniform(np.log(5), np.log(75))))
    angle = rng.uniform(0, np.pi)
    shapes: list[tuple] = []

    def around(x: float, y: float, reach: float) -> tuple[float, float, float, float]:
        return (x - reach, y - reach, x + reach, y + reach)

    if kind == "ellipse":
        b = size * rng.uniform(0.45, 0.75)
        shapes.append((ellipse(cx, cy, size, b, angle), around(cx, cy, size)))
    elif kind == "rounded_rect":
        hh = size * rng.uniform(0.5, 1.0)
        corner = min(size, hh) * rng.uniform(0.05, 0.35)
        shapes.append((rounded_rect(cx, cy, size, hh, corner, angle), around(cx, cy, 1.5 * size)))
    elif kind == "polygon":
        t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 6))))
        radii = size * rng.uniform(0.55, 1.0, len(t))
        pts = np.column_stack([cx + radii * np.cos(t), cy + radii * np.sin(t)])
        shapes.append((polygon(pts), around(cx, cy, size)))
    elif kind == "line":
        length = rng.uniform(40, 400)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        pts = np.array([[cx - dx, cy - dy], [cx + dx, cy + dy]])
        shapes.append((segments(pts, rng.uniform(1.2, 6.0)), around(cx, cy, length / 2 + 4)))
    else:  # text-like: a row of glyphs, each a short open polyline
        height = rng.uniform(8, 28)
        stroke = max(1.0, height * rng.uniform(0.08, 0.16))
        for g in range(int(rng.integers(3, 9))):
            gx = cx + g * height * 0.75
            pts = np.column_stack(
                [gx + rng.uniform(0, 0.6 * height, 4), cy + rng.uniform(0, height, 4)]
            )[: int(rng.integers(2, 5))]
            centre = (gx + 0.3 * height, cy + 0.5 * height)
            shapes.append((segments(pts, stroke), around(*centre, height + stroke)))
    mean, spread = _surroundings(canvas, cx, cy, size)
    target, _ = _contrasting(rng, mean, spread, 0.15, 0.5)
    colour = colour_with_luma(rng, target, rng.uniform(0, 0.8))
    patches = []
    for inside, box in shapes:
        patch = coverage(inside, box, (h, w))
        if patch is not None:
            composite(canvas, patch, colour)
            patches.append(patch)
    return patches


def _visibility(layers: list[_Layer], circles: list[tuple], shape: tuple[int, int]) -> np.ndarray:
    """The share of each disc not covered by what was painted over it, nor cut off."""
    cover = np.zeros(shape)
    visible = np.zeros(len(circles))
    for layer in reversed(layers):
        if layer.circle is not None and layer.disc is not None:
            r = circles[layer.circle][2]
            seen = layer.disc.alpha * (1.0 - cover[layer.disc.window])
            visible[layer.circle] = float(seen.sum()) / (np.pi * r * r)
        window = cover[layer.drawn.window]
        window += layer.drawn.alpha * layer.opacity * (1.0 - window)
    return np.clip(visible, 0.0, 1.0)


def render_scene(seed: int, index: int, with_circles: bool = True) -> Scene:
    """Scene `index` of the set `seed`; without circles it is a negative (same everything else)."""
    rng = np.random.default_rng([seed, index])
    h = int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    w = h if rng.random() < 0.3 else int(rng.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
    background = list(BACKGROUNDS)[index % len(BACKGROUNDS)]
    degradation = list(DEGRADATIONS)[(index // len(BACKGROUNDS)) % len(DEGRADATIONS)]
    colour = bool(rng.random() < 0.7)
    canvas = np.array(BACKGROUNDS[background](rng, h, w), dtype=np.float64)
    placed = _place_circles(rng, int(rng.integers(1, 11)), h, w) if with_circles else []
    fills = [str(rng.choice(FILLS)) for _ in placed]
    items: list[tuple[str, int]] = [("circle", i) for i in range(len(placed))]
    items += [
        ("distractor", int(rng.integers(len(DISTRACTORS)))) for _ in range(rng.integers(1, 8))
    ]
    order = rng.permutation(len(items))
    light = rng.uniform(0, 2 * np.pi)
    layers: list[_Layer] = []
    polarity = ["light"] * len(placed)
    shadow = np.zeros(len(placed), dtype=bool)
    highlight = np.zeros(len(placed), dtype=bool)
    for k in order:
        what, which = items[k]
        if what == "distractor":
            kind = DISTRACTORS[which]
            layers += [_Layer(p, 1.0) for p in _draw_distractor(rng, canvas, kind)]
            continue
        cx, cy, r = placed[which]
        if r >= 5 and rng.random() < 0.35:
            _shadow(rng, canvas, cx, cy, r, light)
            shadow[which] = True
        drawn, body, opacity, sign = _draw_circle(rng, canvas, cx, cy, r, fills[which])
        polarity[which] = "light" if sign > 0 else "dark"
        if drawn is None or body is None:
            continue
        solid_like = fills[which] in ("solid", "gradient", "shaded", "outlined", "textured")
        if solid_like and r >= 6 and rng.random() < 0.3:
            _highlight(rng, canvas, body, cx, cy, r, light)
            highlight[which] = True
        layers.append(_Layer(drawn, opacity, which, body))
    visible = _visibility(layers, placed, (h, w))
    image = canvas if colour else luma(canvas)
    pixels = DEGRADATIONS[degradation](rng, image)
    circles = np.array(placed, dtype=np.float64).reshape(-1, 3)
    return Scene(
        image=pixels,
        circles=circles,
        difficult=visible < DIFFICULT_BELOW,
        visible=visible,
        fills=tuple(fills),
        polarity=tuple(polarity),
        shadow=shadow,
        highlight=highlight,
        background=background,
        degradation=degradation,
        colour=colour,
    )


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def make_scenes(
    count: int,
    seed: int = INDEPENDENT_SEED,
    with_circles: bool = True,
    workers: int | None = None,
    progress: str | None = None,
) -> list[Scene]:
    """Scenes 0..count-1 of set `seed`, in order, identical for any number of workers."""
    workers = default_workers() if workers is None else workers
    make = partial(render_scene, seed, with_circles=with_circles)
    bar = partial(tqdm, total=count, desc=progress, unit="scene", leave=False, disable=not progress)
    if workers <= 1 or count < 8:
        return list(bar(map(make, range(count))))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return list(bar(pool.imap(make, range(count), chunksize=4)))
