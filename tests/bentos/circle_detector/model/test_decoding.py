"""Circle IoU, max-pool peak decoding and circle NMS against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bentos.circle_detector.model.decoding import circle_iou_matrix, circle_nms, decode_candidates
from bentos.circle_detector.model.spec import STRIDE


def iou(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return float(circle_iou_matrix(np.array([a]), np.array([b]))[0, 0])


def test_identical_circles() -> None:
    assert iou((5, 5, 3), (5, 5, 3)) == pytest.approx(1.0)


def test_disjoint_and_touching_circles() -> None:
    assert iou((0, 0, 1), (3, 0, 1)) == 0.0
    assert iou((0, 0, 1), (2, 0, 1)) == pytest.approx(0.0, abs=1e-12)


def test_contained_circle_is_the_area_ratio() -> None:
    assert iou((0, 0, 1), (0.5, 0, 2)) == pytest.approx(0.25)


def test_two_unit_circles_one_apart() -> None:
    # The lens of two unit circles at distance 1 has area 2*pi/3 - sqrt(3)/2.
    lens = 2 * math.pi / 3 - math.sqrt(3) / 2
    assert iou((0, 0, 1), (1, 0, 1)) == pytest.approx(lens / (2 * math.pi - lens))


def test_iou_is_symmetric_and_bounded() -> None:
    rng = np.random.default_rng(1)
    a = np.column_stack([rng.uniform(0, 20, (30, 2)), rng.uniform(1, 10, 30)])
    m = circle_iou_matrix(a, a)
    np.testing.assert_allclose(m, m.T, atol=1e-12)
    assert (m >= 0).all() and (m <= 1 + 1e-12).all()
    np.testing.assert_allclose(np.diag(m), 1.0)


def test_decode_finds_peaks_with_offset_and_radius() -> None:
    heat = np.full((1, 1, 16, 16), -10.0, dtype=np.float32)
    heat[0, 0, 4, 6] = 3.0  # peak at row 4, col 6
    heat[0, 0, 4, 7] = 1.0  # a neighbour, suppressed by the 3x3 max pool
    heat[0, 0, 12, 2] = 0.0  # a second peak, score 0.5
    offset = np.zeros((1, 2, 16, 16), dtype=np.float32)
    offset[0, 0, 4, 6], offset[0, 1, 4, 6] = 0.25, 0.75
    log_radius = np.full((1, 1, 16, 16), math.log(10 / STRIDE), dtype=np.float32)
    rows = decode_candidates(heat, offset, log_radius, min_score=0.1)[0]
    assert len(rows) == 2
    cx, cy, r, score = rows[0]
    assert (cx, cy) == pytest.approx(((6 + 0.25) * STRIDE, (4 + 0.75) * STRIDE))
    assert r == pytest.approx(10.0, rel=1e-5)
    assert score == pytest.approx(1 / (1 + math.exp(-3)), rel=1e-5)
    assert rows[1][3] == pytest.approx(0.5)


def test_nms_keeps_the_best_of_overlapping_circles() -> None:
    circles = np.array([[10, 10, 5, 0.6], [10.5, 10, 5, 0.9], [40, 40, 5, 0.5]], dtype=np.float32)
    kept = circle_nms(circles, 0.5)
    np.testing.assert_allclose(kept[:, 3], [0.9, 0.5])


def test_nms_of_nothing() -> None:
    assert circle_nms(np.zeros((0, 4), dtype=np.float32)).shape == (0, 4)


def test_decode_equals_torch_max_pool_topk() -> None:
    """The NumPy decoding is CenterNet's torch recipe: sigmoid, 3x3 max-pool NMS, top k."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    heat = rng.normal(-2.0, 2.0, (2, 1, 24, 20)).astype(np.float32)
    heat[:, :, 0, :5] = 4.0  # a plateau on the border: ties, and the max pool's padding
    offset = np.zeros((2, 2, 24, 20), dtype=np.float32)  # cells read back from the centres
    log_radius = rng.normal(1.0, 0.3, (2, 1, 24, 20)).astype(np.float32)
    got = decode_candidates(heat, offset, log_radius, max_candidates=30, min_score=0.05)
    t = torch.sigmoid(torch.from_numpy(heat))
    peaks = torch.nn.functional.max_pool2d(t, 3, stride=1, padding=1)
    t = torch.where(peaks == t, t, torch.zeros_like(t)).view(2, -1)
    for i in range(2):
        scores, index = t[i].topk(30)
        keep = scores >= 0.05
        cells = np.rint(got[i][:, 1] / STRIDE) * 20 + np.rint(got[i][:, 0] / STRIDE)
        assert sorted(cells.astype(int).tolist()) == sorted(index[keep].tolist())
        np.testing.assert_allclose(got[i][:, 3], scores[keep].numpy(), rtol=1e-6)
        radius = np.exp(log_radius[i, 0].reshape(-1)[cells.astype(int)]) * STRIDE
        np.testing.assert_allclose(got[i][:, 2], radius, rtol=1e-6)
