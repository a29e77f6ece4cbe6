"""Degradations for the evaluation-only generator: one kind per scene, then 8-bit pixels.

Each takes a float image in [0, 1] ((H, W) grey or (H, W, 3) colour) and returns uint8 of the
same layout, so that a scene's degradation is one named category in the breakdowns.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

from .independent_draw import coverage, segments

Degradation = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def _spatial(image: np.ndarray, sigma: float) -> tuple[float, ...]:
    return (sigma, sigma) if image.ndim == 2 else (sigma, sigma, 0.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def none(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    return to_uint8(image)


def noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Heavy additive Gaussian noise, independent per channel."""
    return to_uint8(image + rng.normal(0.0, rng.uniform(0.06, 0.12), image.shape))


def blur(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    return to_uint8(ndimage.gaussian_filter(image, _spatial(image, rng.uniform(1.2, 2.5))))


def motion(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A straight motion streak 5-11 px long at any angle (a supersampled line kernel)."""
    length, angle = rng.uniform(5, 11), rng.uniform(0, np.pi)
    half = int(np.ceil(length / 2)) + 1
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    line = segments(np.array([[half - dx, half - dy], [half + dx, half + dy]]), 1.0)
    patch = coverage(line, (0, 0, 2 * half, 2 * half), (2 * half + 1, 2 * half + 1), ss=8)
    assert patch is not None
    kernel = np.zeros((2 * half + 1, 2 * half + 1))
    kernel[patch.window] = patch.alpha
    kernel /= kernel.sum()
    if image.ndim == 3:
        kernel = kernel[..., None]
    return to_uint8(ndimage.convolve(image, kernel, mode="reflect"))


def jpeg(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Low-quality JPEG (quality 6-20), decoded again."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=int(rng.integers(6, 21)))
    decoded = Image.open(io.BytesIO(buffer.getvalue()))
    return np.asarray(decoded.convert("L" if image.ndim == 2 else "RGB"), dtype=np.uint8)


def illumination(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A smooth multiplicative light field (a ramp and a spot) and a little haze."""
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = rng.uniform(0, 2 * np.pi)
    ramp = (x * np.cos(t) + y * np.sin(t)) / np.hypot(h, w) + 0.5
    spot = np.exp(
        -((x - rng.uniform(0, w)) ** 2 + (y - rng.uniform(0, h)) ** 2)
        / (2 * (rng.uniform(0.2, 0.5) * max(h, w)) ** 2)
    )
    field = 0.5 * ramp + 0.5 * spot
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-9)
    gain = rng.uniform(0.3, 0.6) + rng.uniform(0.6, 0.9) * field
    if image.ndim == 3:
        gain = gain[..., None]
    return to_uint8(image * gain + rng.uniform(0.0, 0.08))


def salt_pepper(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    out = to_uint8(image)
    hit = rng.random(out.shape[:2])
    fraction = rng.uniform(0.01, 0.05)
    out[hit < fraction / 2] = 0
    out[hit > 1 - fraction / 2] = 255
    return out


def low_light(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Dim exposure with photon (Poisson) noise: few photons per pixel, then a gain."""
    exposure = rng.uniform(0.15, 0.35)
    photons = rng.uniform(40, 120)
    counts = rng.poisson(image * exposure * photons)
    return to_uint8(counts / photons * rng.uniform(1.0, 2.0))


DEGRADATIONS: dict[str, Degradation] = {
    "none": none,
    "noise": noise,
    "blur": blur,
    "motion": motion,
    "jpeg": jpeg,
    "illumination": illumination,
    "salt_pepper": salt_pepper,
    "low_light": low_light,
}
