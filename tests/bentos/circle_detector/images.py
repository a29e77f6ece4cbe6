"""Synthetic test images (drawn here, nothing downloaded) and the in-process reference results."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

#: Parameters that make the (possibly untrained) model report candidates.
LOOSE = {"score_threshold": 0.0, "max_detections": 20}


def circles_image(height: int, width: int, seed: int = 0, channels: int = 0) -> np.ndarray:
    """Dark rings and discs on a light, slightly noisy background; uint8 (H, W) or (H, W, C)."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width), 230, dtype=np.uint8)
    for _ in range(3):
        r = int(rng.integers(6, max(7, min(height, width) // 4)))
        cx, cy = int(rng.integers(r, width - r)), int(rng.integers(r, height - r))
        cv2.circle(img, (cx, cy), r, 40, thickness=int(rng.integers(1, 4)))
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    if channels:
        img = np.repeat(img[..., None], channels, axis=2)
        if channels == 4:
            img[..., 3] = 255
    return img


def encode(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@lru_cache(maxsize=1)
def reference_detector():
    from bentos.circle_detector.model.detector import CircleDetector

    return CircleDetector.load()


def hot_checkpoint(path: Path) -> Path:
    """The committed checkpoint with the heatmap prior raised, saved at `path`: even an
    untrained network then reports candidates, so uneven counts and padding are exercised."""
    import torch

    from bentos.circle_detector.model.artifacts import WEIGHTS_PATH
    from bentos.circle_detector.model.checkpoint import load_checkpoint, save_checkpoint

    net, info, scorer = load_checkpoint(WEIGHTS_PATH)
    with torch.no_grad():
        net.heatmap.bias.fill_(2.0)
    save_checkpoint(path, net, info, scorer)
    return path


def reference(images: list[np.ndarray], score_threshold: float, max_detections: int):
    """What the model says in-process: list of (K, 4) float32 rows (cx, cy, r, score)."""
    return reference_detector().detect_arrays(images, score_threshold, max_detections)


def assert_matches_reference(outputs: dict[str, np.ndarray], expected: list[np.ndarray]) -> None:
    """Compare V2 outputs (by name) with in-process rows; zero padding past num_detections."""
    counts = outputs["num_detections"]
    assert counts.tolist() == [len(e) for e in expected]
    k = max((len(e) for e in expected), default=0)
    assert outputs["boxes"].shape == (len(expected), k, 4)
    for i, rows in enumerate(expected):
        n = len(rows)
        np.testing.assert_allclose(outputs["centers"][i, :n], rows[:, :2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(outputs["radii"][i, :n], rows[:, 2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(outputs["scores"][i, :n], rows[:, 3], rtol=0, atol=1e-4)
        box = np.stack(
            [
                rows[:, 0] - rows[:, 2],
                rows[:, 1] - rows[:, 2],
                rows[:, 0] + rows[:, 2],
                rows[:, 1] + rows[:, 2],
            ],
            axis=-1,
        )
        np.testing.assert_allclose(outputs["boxes"][i, :n], box, rtol=0, atol=1e-3)
        assert not outputs["scores"][i, n:].any(), "padding must be zero"
