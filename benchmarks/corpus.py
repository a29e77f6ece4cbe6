"""The images every benchmark sends: real photographs and labelled synthetic scenes, encoded.

Real: photographs shipped inside scikit-image (coins, the moon, a clock, ...), read from its
package data, never downloaded. Synthetic: `bentos.circle_detector.training.synthetic.generate`
scenes at `BENCH_SIZES` sides, the detector's own domain with known circles. Encoded as PNG,
some as JPEG, so that decoding is part of every request as it is for real users.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import cv2
import numpy as np

#: scikit-image loaders whose files ship inside its wheel (no network).
REAL = ("coins", "moon", "camera", "clock", "coffee", "page")


@dataclass(frozen=True)
class Sample:
    """One encoded image: a short name for Locust's statistics and the file's bytes."""

    name: str
    data: bytes
    height: int
    width: int


def _encode(image: np.ndarray, ext: str) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise RuntimeError(f"cv2 could not encode {image.shape} as {ext}")
    return buf.tobytes()


def real_samples() -> list[Sample]:
    import skimage.data

    out = []
    for name in REAL:
        image = np.ascontiguousarray(getattr(skimage.data, name)())
        ext = ".jpg" if name == "coffee" else ".png"
        h, w = image.shape[:2]
        out.append(Sample(f"real-{name}{ext}", _encode(image, ext), h, w))
    return out


def synthetic_samples(sizes: list[int], per_size: int = 2, seed: int = 6) -> list[Sample]:
    from bentos.circle_detector.training.synthetic import TRAIN, generate

    rng = np.random.default_rng(seed)
    out = []
    for size in sizes:
        cfg = replace(TRAIN, height=size, width=size, radius=(4.0, size / 3))
        for k in range(per_size):
            ext = ".jpg" if k % 2 else ".png"
            image = generate(rng, cfg).image
            out.append(Sample(f"synthetic-{size}{ext}", _encode(image, ext), size, size))
    return out


@cache
def samples(sizes: tuple[int, ...] = (256, 512, 1024), real: bool = True) -> tuple[Sample, ...]:
    """Real and synthetic images interleaved, so any run of a few requests sees both kinds."""
    synth = synthetic_samples(list(sizes))
    reals = real_samples() if real else []
    mixed: list[Sample] = []
    for i in range(max(len(synth), len(reals))):
        mixed += [s[i] for s in (reals, synth) if i < len(s)]
    return tuple(mixed)


def from_settings() -> tuple[Sample, ...]:
    """The corpus `BENCH_SIZES` and `BENCH_REAL` ask for."""
    from .config import settings

    s = settings()
    return samples(tuple(s.size_list), s.real)
