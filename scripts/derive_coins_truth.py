"""Derive the ground truth of skimage's coins photo, independently of the model's refinement.

Rough circles from a hand-tuned HoughCircles (tuned on this one photo, for the truth only), then,
per coin, Canny edge pixels in an annulus, a RANSAC circle and a least-squares refit on its
inliers. The result was checked by eye on a 3x overlay and is committed as
`bentos/circle_detector/training/data/coins_truth.json`. Run: python scripts/derive_coins_truth.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import skimage.data

OUT = Path(__file__).parents[1] / "bentos/circle_detector/training/data/coins_truth.json"


def kasa(points: np.ndarray) -> tuple[float, float, float]:
    a = np.c_[2 * points[:, 0], 2 * points[:, 1], np.ones(len(points))]
    b = (points**2).sum(axis=1)
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    return sol[0], sol[1], float(np.sqrt(sol[2] + sol[0] ** 2 + sol[1] ** 2))


def ransac(points: np.ndarray, rng: np.random.Generator, tol: float = 1.0) -> np.ndarray:
    best = np.zeros(len(points), dtype=bool)
    for _ in range(800):
        sample = points[rng.choice(len(points), 3, replace=False)]
        try:
            cx, cy, r = kasa(sample)
        except np.linalg.LinAlgError:
            continue
        inliers = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - r) < tol
        if inliers.sum() > best.sum():
            best = inliers
    return best


def outer_boundary(img: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    """Per ray, the outermost point where the profile falls below half-way coin/background."""
    theta = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    t = np.arange(0.6 * r, 1.5 * r, 0.1)
    map_x = (cx + t[None] * np.cos(theta)[:, None]).astype(np.float32)
    map_y = (cy + t[None] * np.sin(theta)[:, None]).astype(np.float32)
    prof = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    background = np.median(prof[:, t > 1.3 * r])
    coin = np.percentile(prof[:, t < 0.85 * r], 80, axis=1)
    level = (coin + background) / 2
    points = []
    for k in range(len(theta)):
        above = np.nonzero(prof[k] >= level[k])[0]
        if len(above) == 0 or above[-1] + 1 >= len(t):
            continue
        i = above[-1]
        a, b = prof[k, i] - level[k], prof[k, i + 1] - level[k]
        radius = t[i] + (t[i + 1] - t[i]) * a / (a - b)
        points.append((cx + radius * np.cos(theta[k]), cy + radius * np.sin(theta[k])))
    return np.asarray(points)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    img = skimage.data.coins()
    blurred = cv2.GaussianBlur(img, (0, 0), 1.5)
    rough = cv2.HoughCircles(
        blurred,
        cv2.HOUGH_GRADIENT,
        dp=1,
        minDist=25,
        param1=120,
        param2=25,
        minRadius=12,
        maxRadius=45,
    )[0]
    smooth = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.7)
    rng = np.random.default_rng(0)
    truth = []
    for x, y, r in rough:
        cx, cy, rr = float(x), float(y), float(r)
        for _ in range(3):
            points = outer_boundary(smooth, cx, cy, rr)
            inliers = ransac(points, rng)
            cx, cy, rr = kasa(points[inliers])
        truth.append({"cx": round(cx, 2), "cy": round(cy, 2), "r": round(rr, 2)})
    truth.sort(key=lambda c: (round(c["cy"] / 60), c["cx"]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"image": "skimage.data.coins()", "circles": truth}, indent=1) + "\n")
    vis = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    vis = cv2.resize(vis, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    for c in truth:
        centre = (round((c["cx"] * 3 + 1) * 16), round((c["cy"] * 3 + 1) * 16))
        cv2.circle(vis, centre, round(c["r"] * 3 * 16), (0, 0, 255), 1, cv2.LINE_AA, 4)
    cv2.imwrite("/tmp/coins_truth_overlay.png", vis)
    print(f"{len(truth)} circles -> {OUT}")


if __name__ == "__main__":
    main()
