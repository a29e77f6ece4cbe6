"""OpenCV's Hough transform, the classical baseline, with one fixed parameter set per variant.

The parameters follow OpenCV's documentation examples and are never tuned per image. HoughCircles
returns no confidence, so its circles are scored by rank (the accumulator order it returns them
in), which is what its precision-recall curve can honestly use.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

RADIUS_RANGE = (4, 120)


def _ranked(found: np.ndarray | None) -> np.ndarray:
    if found is None:
        return np.zeros((0, 4), dtype=np.float32)
    circles = found[0][:, :3].astype(np.float32)
    scores = 1.0 - np.arange(len(circles), dtype=np.float32) / max(len(circles), 1)
    return np.column_stack([circles, scores])


def hough_gradient(grey: np.ndarray) -> np.ndarray:
    """cv2.HOUGH_GRADIENT on a median-blurred image: rows (cx, cy, r, rank score)."""
    blurred = cv2.medianBlur(grey, 5)
    return _ranked(
        cv2.HoughCircles(
            blurred,
            cv2.HOUGH_GRADIENT,
            dp=1,
            minDist=10,
            param1=100,
            param2=30,
            minRadius=RADIUS_RANGE[0],
            maxRadius=RADIUS_RANGE[1],
        )
    )


def hough_gradient_alt(grey: np.ndarray) -> np.ndarray:
    """cv2.HOUGH_GRADIENT_ALT (the more accurate variant): rows (cx, cy, r, rank score)."""
    return _ranked(
        cv2.HoughCircles(
            grey,
            cv2.HOUGH_GRADIENT_ALT,
            dp=1.5,
            minDist=10,
            param1=300,
            param2=0.85,
            minRadius=RADIUS_RANGE[0],
            maxRadius=RADIUS_RANGE[1],
        )
    )


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hough-gradient": hough_gradient,
    "hough-gradient-alt": hough_gradient_alt,
}
