"""Sub-pixel refinement on rendered circles whose centre and radius are known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bentos.circle_detector.model import refine
from bentos.circle_detector.model.refine import (
    fit_circles,
    masked_median,
    refine_circle,
    refine_circles,
)
from bentos.circle_detector.training.synthetic import circle_mask


def render(cx: float, cy: float, r: float, size: int = 128, fg: int = 200, bg: int = 60):
    """A disc with exact anti-aliasing (the generator's), as float grey in [0, 1]."""
    coverage = circle_mask(size, size, cx, cy, r, 0.0)
    return ((bg + (fg - bg) * coverage) / 255.0).astype(np.float32)


def test_fit_circle_is_exact_on_exact_points() -> None:
    theta = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    pts = np.column_stack([3.3 + 7.7 * np.cos(theta), -2.1 + 7.7 * np.sin(theta)])
    fit = fit_circles(pts[None], np.ones((1, len(pts))))[0]
    assert fit == pytest.approx(np.array([3.3, -2.1, 7.7]), abs=1e-9)


def test_fit_circles_leaves_out_points_of_weight_zero() -> None:
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    ring = np.column_stack([10 + 5 * np.cos(theta), 20 + 5 * np.sin(theta)])
    wild = np.random.default_rng(1).uniform(-50, 50, (40, 2))
    points = np.stack([np.vstack([ring, wild]), np.vstack([wild, ring])])
    weights = np.stack([np.r_[np.ones(40), np.zeros(40)], np.r_[np.zeros(40), np.ones(40)]])
    assert fit_circles(points, weights) == pytest.approx(np.array([[10, 20, 5]] * 2), abs=1e-9)


def test_masked_median_matches_numpy_on_each_row() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(6, 9))
    mask = rng.random((6, 9)) < 0.6
    mask[0] = True
    mask[1] = False
    expected = [np.median(v[m]) if m.any() else np.nan for v, m in zip(values, mask, strict=True)]
    assert masked_median(values, mask) == pytest.approx(np.array(expected), nan_ok=True)


def test_refining_many_at_once_equals_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates of very different sizes share arrays padded to the largest; padding, chunking
    and the per-candidate early exits must not leak from one candidate into another."""
    grey = render(64.0, 64.0, 30.0, size=256)
    grey[150:230, 150:230] = render(40.0, 40.0, 6.3, size=80)
    grey[:80, 170:250] = 0.5  # flat: no edge at all
    starts = np.array([
        [65.0, 63.0, 28.0],  # a disc
        [190.5, 189.0, 7.0],  # a small disc
        [210.0, 40.0, 12.0],  # nothing there
        [128.0, 128.0, 110.0],  # huge, mostly outside the image
        [2.0, 60.0, 20.0],  # at the border, nothing there
    ])  # fmt: skip
    monkeypatch.setattr(refine, "CHUNK_ELEMENTS", 20_000)  # forces several chunks
    together = refine_circles(grey, starts)
    alone = [refine_circle(grey, *row) for row in starts]
    assert [f.accepted for f in together] == [True, True, False, False, False]
    for a, b in zip(together, alone, strict=True):
        assert (a.cx, a.cy, a.r, a.support, a.accepted) == pytest.approx(
            (b.cx, b.cy, b.r, b.support, b.accepted), abs=1e-9
        )
        assert np.r_[a.shape.harmonics, a.shape.residual, a.shape.strength] == pytest.approx(
            np.r_[b.shape.harmonics, b.shape.residual, b.shape.strength], abs=1e-9
        )
    assert refine_circles(grey, np.zeros((0, 3))) == []


@pytest.mark.parametrize(
    ("cx", "cy", "r"), [(64.3, 63.7, 30.2), (50.55, 70.25, 8.4), (64.0, 64.0, 5.0)]
)
def test_refinement_recovers_sub_pixel_centre_and_radius(cx: float, cy: float, r: float) -> None:
    grey = render(cx, cy, r)
    # Start as far off as a stride-4 heatmap can be: 2 px and 15% of the radius.
    fit = refine_circle(grey, cx + 1.6, cy - 1.2, r * 1.15)
    assert fit.accepted
    assert np.hypot(fit.cx - cx, fit.cy - cy) < 0.3
    assert abs(fit.r - r) < 0.3


def test_refinement_works_for_dark_on_bright_and_with_noise() -> None:
    grey = render(60.4, 66.6, 22.0, fg=40, bg=220)
    grey += np.random.default_rng(0).normal(0, 0.05, grey.shape).astype(np.float32)
    fit = refine_circle(grey, 62.0, 65.0, 20.0)
    assert fit.accepted
    assert np.hypot(fit.cx - 60.4, fit.cy - 66.6) < 0.5 and abs(fit.r - 22.0) < 0.5


def test_refinement_ignores_an_occluder() -> None:
    grey = render(64.0, 64.0, 30.0)
    grey[:, 80:] = 0.9  # a bright slab hides a third of the rim
    fit = refine_circle(grey, 65.0, 63.0, 28.0)
    assert fit.accepted
    assert np.hypot(fit.cx - 64.0, fit.cy - 64.0) < 0.5 and abs(fit.r - 30.0) < 0.5


def test_no_edge_keeps_the_prediction() -> None:
    flat = np.full((64, 64), 0.5, dtype=np.float32)
    fit = refine_circle(flat, 30.0, 31.0, 10.0)
    assert not fit.accepted
    assert (fit.cx, fit.cy, fit.r) == (30.0, 31.0, 10.0)


def square(cx: float, cy: float, half: float, size: int = 128) -> np.ndarray:
    grey = np.full((size, size), 60 / 255, dtype=np.float32)
    y0, y1, x0, x1 = (round(v) for v in (cy - half, cy + half, cx - half, cx + half))
    grey[y0:y1, x0:x1] = 200 / 255
    return grey


def test_edge_shape_tells_a_circle_from_a_square_and_an_ellipse() -> None:
    circle = refine_circle(render(64.0, 64.0, 20.0), 64.0, 64.0, 20.0)
    box = refine_circle(square(64.0, 64.0, 18.0), 64.0, 64.0, 20.0)
    stretched = cv2.resize(render(64.0, 64.0, 20.0), (128, 80), interpolation=cv2.INTER_AREA)
    ellipse = refine_circle(stretched, 64.0, 40.0, 17.0)
    assert max(circle.shape.harmonics) < 0.01 and circle.shape.residual < 0.01
    assert box.shape.harmonics[2] > 5 * max(circle.shape.harmonics)  # 4 cycles: a square
    assert ellipse.shape.harmonics[0] > 0.1  # 2 cycles: an ellipse
    assert circle.shape.coverage == 1.0 and circle.shape.strength > 0


def test_edge_shape_of_a_circle_cut_by_the_border_reports_the_coverage() -> None:
    fit = refine_circle(render(10.0, 64.0, 20.0), 10.0, 64.0, 20.0)
    assert 0.4 < fit.shape.coverage < 0.8
