"""The in-process detector with the committed weights: coordinates, layouts, batching."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bentos.circle_detector.model.detector import Circle, CircleDetector, prepare


@pytest.fixture(scope="module")
def detector() -> CircleDetector:
    return CircleDetector.load(threads=2)


def scene(height: int, width: int, circles: list[tuple[float, float, float]]) -> np.ndarray:
    img = np.full((height, width), 70, dtype=np.uint8)
    for cx, cy, r in circles:
        cv2.circle(img, (round(cx * 16), round(cy * 16)), round(r * 16), 190, -1, cv2.LINE_AA, 4)
    return img


def assert_found(found: np.ndarray, truth: list[tuple[float, float, float]], tol: float) -> None:
    assert len(found) == len(truth), found
    for cx, cy, r in truth:
        d = np.hypot(found[:, 0] - cx, found[:, 1] - cy)
        best = found[np.argmin(d)]
        assert np.hypot(best[0] - cx, best[1] - cy) < tol and abs(best[2] - r) < tol, (best, cx)


def test_clear_discs_are_found_to_a_pixel(detector: CircleDetector) -> None:
    truth = [(60.3, 70.6, 20.0), (180.2, 150.4, 35.5), (200.0, 50.0, 9.0)]
    found = detector.detect_arrays([scene(240, 260, truth)])[0]
    assert_found(found, truth, 1.0)
    assert (found[:, 3] >= 0.5).all() and (found[:, 3] <= 1.0).all()


def test_a_large_image_is_reported_in_its_own_pixels(detector: CircleDetector) -> None:
    truth = [(700.0, 500.0, 150.0), (2100.0, 1300.0, 90.0)]
    image = scene(1800, 2600, truth)
    assert prepare(image).scale < 1.0  # the network saw it downscaled
    assert_found(detector.detect_arrays([image])[0], truth, 1.5)


@pytest.mark.parametrize("layout", ["grey", "rgb", "rgba", "grey16"])
def test_every_pixel_layout_gives_the_same_circles(detector: CircleDetector, layout: str) -> None:
    grey = scene(128, 128, [(64.0, 64.0, 25.0)])
    image = {
        "grey": grey,
        "rgb": np.dstack([grey] * 3),
        "rgba": np.dstack([grey] * 3 + [np.full_like(grey, 255)]),
        "grey16": grey.astype(np.uint16) * 257,
    }[layout]
    np.testing.assert_allclose(
        detector.detect_arrays([image])[0], detector.detect_arrays([grey])[0], atol=1e-3
    )


def test_a_batch_equals_single_images(detector: CircleDetector) -> None:
    images = [scene(128, 160, [(50.0, 60.0, 20.0)]), scene(200, 96, [(48.0, 100.0, 30.0)])]
    batch = detector.detect_arrays(images)
    for image, result in zip(images, batch, strict=True):
        np.testing.assert_allclose(result, detector.detect_arrays([image])[0], atol=1e-3)


def test_threshold_and_max_detections(detector: CircleDetector) -> None:
    truth = [(40.0 + 60 * i, 64.0, 18.0) for i in range(4)]
    image = scene(128, 280, truth)
    assert len(detector.detect_arrays([image], max_detections=2)[0]) == 2
    assert len(detector.detect_arrays([image], score_threshold=1.01)[0]) == 0
    everything = detector.detect_arrays([image], score_threshold=0.0)[0]
    assert (np.diff(everything[:, 3]) <= 0).all()  # best first


def test_blank_image_has_no_circles(detector: CircleDetector) -> None:
    assert detector.detect([np.full((100, 100), 128, dtype=np.uint8)]) == [[]]


def test_circle_dict_has_the_documented_fields() -> None:
    assert Circle(10.0, 20.0, 5.0, 0.9).as_dict() == {
        "bbox": [5.0, 15.0, 15.0, 25.0],
        "center": [10.0, 20.0],
        "radius": 5.0,
        "score": 0.9,
    }
