"""Backgrounds for the evaluation-only generator, each a colour image in [0, 1] (H, W, 3).

Kinds are grouped as the breakdowns report them: flat, gradient, blobs (a field of irregular
round-ish blobs, the look-alikes of discs), periodic (checkerboard, tiles, stripes, grid),
texture (filtered noise) and photo (1/f noise, the spectrum of natural images).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from .independent_draw import colour_with_luma, composite, coverage, star_blob

Background = Callable[[np.random.Generator, int, int], np.ndarray]


def _colour(rng: np.random.Generator, lo: float = 0.12, hi: float = 0.88) -> np.ndarray:
    return colour_with_luma(rng, rng.uniform(lo, hi), rng.uniform(0.0, 0.7))


def _pair(rng: np.random.Generator, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Two colours whose lumas differ by lo..hi."""
    gap = rng.uniform(lo, hi)
    base = rng.uniform(0.1, 0.9 - gap)
    first = colour_with_luma(rng, base, rng.uniform(0, 0.6))
    second = colour_with_luma(rng, base + gap, rng.uniform(0, 0.6))
    return (first, second) if rng.random() < 0.5 else (second, first)


def _rotated(rng: np.random.Generator, h: int, w: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotated coordinates (u, v) of ss x ss sub-samples per pixel, shaped (h*ss, w*ss)."""
    off = (np.arange(ss) + 0.5) / ss - 0.5
    xs = (np.arange(w)[:, None] + off).reshape(1, -1)
    ys = (np.arange(h)[:, None] + off).reshape(-1, 1)
    t = rng.uniform(0, np.pi)
    return xs * np.cos(t) + ys * np.sin(t), -xs * np.sin(t) + ys * np.cos(t)


def _mix(mask: np.ndarray, h: int, w: int, ss: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sub-sample mask (1 = colour b) averaged to pixels and blended between two colours."""
    m = mask.astype(np.float32).reshape(h, ss, w, ss).mean(axis=(1, 3))[..., None]
    return (a * (1 - m) + b * m).astype(np.float32)


def flat(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.broadcast_to(_colour(rng), (h, w, 3)).astype(np.float32)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _pair(rng, 0.15, 0.5)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:
        t = rng.uniform(0, 2 * np.pi)
        s = x * np.cos(t) + y * np.sin(t)
    else:
        s = np.hypot(x - rng.uniform(0, w), y - rng.uniform(0, h))
    s = ((s - s.min()) / max(float(np.ptp(s)), 1e-6))[..., None]
    return (a * (1 - s) + b * s).astype(np.float32)


def blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Many irregular blobs, darker and lighter than the ground, slightly soft."""
    canvas = np.array(np.broadcast_to(_colour(rng, 0.3, 0.7), (h, w, 3)), dtype=np.float64)
    ground = float(canvas[0, 0] @ np.array([0.299, 0.587, 0.114]))
    count = int(rng.integers(25, 110))
    for _ in range(count):
        radius = float(np.exp(rng.uniform(np.log(4), np.log(45))))
        amps = rng.uniform(0.0, 0.16, 4) * rng.choice([-1, 1], 4)
        if np.abs(amps).sum() < 0.18:  # keep them visibly not circles
            amps *= 0.18 / max(np.abs(amps).sum(), 1e-6)
        harmonics = np.column_stack([amps, rng.uniform(0, 2 * np.pi, 4)])
        cx, cy = rng.uniform(-radius, w + radius), rng.uniform(-radius, h + radius)
        reach = radius * 1.7
        patch = coverage(
            star_blob(cx, cy, radius, harmonics, rng.uniform(0, 2 * np.pi)),
            (cx - reach, cy - reach, cx + reach, cy + reach),
            (h, w),
            ss=3,
        )
        if patch is None:
            continue
        shift = rng.uniform(0.1, 0.4) * rng.choice([-1, 1])
        composite(canvas, patch, colour_with_luma(rng, np.clip(ground + shift, 0.03, 0.97), 0.4))
    sigma = rng.uniform(0.0, 1.5)
    if sigma > 0.3:
        canvas = ndimage.gaussian_filter(canvas, (sigma, sigma, 0))
    return canvas.astype(np.float32)


def checkerboard(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ss, period = 3, rng.uniform(6, 48)
    u, v = _rotated(rng, h, w, ss)
    mask = (np.floor(u / period) + np.floor(v / period)) % 2 == 1
    return _mix(mask, h, w, ss, *_pair(rng, 0.15, 0.55))


def tiles(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Bricks of jittered colour in offset rows, with grout lines."""
    ss = 3
    tile_h = rng.uniform(10, 50)
    tile_w = tile_h * rng.uniform(1.0, 3.0)
    grout = rng.uniform(1.0, 3.5)
    u, v = _rotated(rng, h, w, ss)
    row = np.floor(v / tile_h)
    shifted = u + (row % 2) * tile_w * 0.5
    col = np.floor(shifted / tile_w)
    in_grout = ((v - row * tile_h) < grout) | ((shifted - col * tile_w) < grout)
    base, line = _pair(rng, 0.15, 0.45)
    jitter = rng.uniform(-0.08, 0.08, 97)
    tone = jitter[((row * 31 + col * 17) % 97).astype(np.int64)]
    lum = (1.0 - in_grout) * tone
    pix = lum.reshape(h, ss, w, ss).mean(axis=(1, 3))[..., None]
    img = _mix(in_grout, h, w, ss, base, line) + pix
    return np.clip(img, 0, 1).astype(np.float32)


def stripes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ss, period = 3, rng.uniform(5, 40)
    u, _ = _rotated(rng, h, w, ss)
    a, b = _pair(rng, 0.15, 0.55)
    if rng.random() < 0.5:
        mask = (u % period) < period * rng.uniform(0.3, 0.7)
        return _mix(mask, h, w, ss, a, b)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    m = wave.reshape(h, ss, w, ss).mean(axis=(1, 3))[..., None]
    return (a * (1 - m) + b * m).astype(np.float32)


def grid(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ss, period, width = 3, rng.uniform(10, 50), rng.uniform(1.0, 3.0)
    u, v = _rotated(rng, h, w, ss)
    mask = ((u % period) < width) | ((v % period) < width * rng.uniform(0.7, 1.3))
    return _mix(mask, h, w, ss, *_pair(rng, 0.2, 0.5))


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Filtered noise, isotropic or grained along one axis, tinted."""
    sx, sy = rng.uniform(0.7, 3.5), rng.uniform(0.7, 3.5)
    if rng.random() < 0.3:
        sx *= rng.uniform(3, 8)  # fibres
    n = ndimage.gaussian_filter(rng.standard_normal((h, w)), (sy, sx))
    n = (n - n.mean()) / max(float(n.std()), 1e-9)
    base = _colour(rng, 0.25, 0.75)
    tint = colour_with_luma(rng, 1.0, rng.uniform(0, 0.5)) * rng.uniform(0.06, 0.16)
    return np.clip(base + n[..., None] * tint, 0, 1).astype(np.float32)


def photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """1/f^beta noise per channel around a shared luminance field, like a natural image."""
    beta = rng.uniform(1.6, 2.4)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2)
    amp[0, 0] = 0.0

    def field() -> np.ndarray:
        spectrum = amp * np.exp(2j * np.pi * rng.random(amp.shape))
        out = np.fft.irfft2(spectrum, s=(h, w))
        return (out - out.mean()) / max(float(out.std()), 1e-9)

    shared = field()
    base = _colour(rng, 0.3, 0.7)
    contrast = rng.uniform(0.08, 0.18)
    img = base + contrast * shared[..., None]
    img = img + 0.03 * np.stack([field() for _ in range(3)], axis=-1)
    return np.clip(img, 0, 1).astype(np.float32)


BACKGROUNDS: dict[str, Background] = {
    "flat": flat,
    "gradient": gradient,
    "blobs": blobs,
    "checkerboard": checkerboard,
    "tiles": tiles,
    "stripes": stripes,
    "grid": grid,
    "texture": texture,
    "photo": photo,
}

#: The coarser groups the issue names; periodic covers four kinds.
GROUP = {
    "flat": "flat",
    "gradient": "gradient",
    "blobs": "blobs",
    "checkerboard": "periodic",
    "tiles": "periodic",
    "stripes": "periodic",
    "grid": "periodic",
    "texture": "texture",
    "photo": "photo",
}
