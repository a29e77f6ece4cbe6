"""The evaluation-only generator: seeded, labels that match its pixels, and no training code."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from bentos.circle_detector.training import independent
from bentos.circle_detector.training.independent import (
    DIFFICULT_BELOW,
    FILLS,
    make_scenes,
    render_scene,
)
from bentos.circle_detector.training.independent_draw import coverage, disc
from bentos.circle_detector.training.negatives import PHOTOS, negative_scenes, photographs

TRAINING = Path(independent.__file__).parent
EVALUATION_MODULES = [*sorted(TRAINING.glob("independent*.py")), TRAINING / "negatives.py"]


def test_same_seed_same_scenes_other_seed_other_scenes() -> None:
    a, b = render_scene(11, 3), render_scene(11, 3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.circles, b.circles)
    assert a.fills == b.fills and a.background == b.background
    c = render_scene(12, 3)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_workers_do_not_change_the_set() -> None:
    one = make_scenes(8, seed=5, workers=1)
    two = make_scenes(8, seed=5, workers=2)
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.circles, b.circles)


def test_scene_labels_are_consistent() -> None:
    for scene in make_scenes(18, seed=7, workers=1):
        h, w = scene.image.shape[:2]
        assert 320 <= h <= 512 and 320 <= w <= 512
        assert scene.image.dtype == np.uint8 and scene.image.ndim == (3 if scene.colour else 2)
        n = len(scene.circles)
        assert n >= 1 and len(scene.fills) == len(scene.polarity) == len(scene.difficult) == n
        assert set(scene.fills) <= set(FILLS)
        cx, cy, r = scene.circles.T
        assert ((cx >= 0) & (cx <= w - 1) & (cy >= 0) & (cy <= h - 1)).all()
        assert ((r >= 4) & (r <= 150)).all()
        np.testing.assert_array_equal(scene.difficult, scene.visible < DIFFICULT_BELOW)


@pytest.mark.parametrize("radius", [4.3, 9.7, 37.2, 120.5])
def test_disc_coverage_has_the_labelled_centre_and_area(radius: float) -> None:
    cx, cy = 200.37, 180.81
    patch = coverage(
        disc(cx, cy, radius), (cx - radius, cy - radius, cx + radius, cy + radius), (400, 420), 8
    )
    assert patch is not None
    x, y = patch.pixel_grid()
    area = patch.alpha.sum()
    assert area == pytest.approx(np.pi * radius**2, rel=2e-3)
    assert (patch.alpha * x).sum() / area == pytest.approx(cx, abs=0.02)
    assert (patch.alpha * y).sum() / area == pytest.approx(cy, abs=0.02)


@pytest.mark.parametrize("fill", FILLS)
def test_every_fill_paints_within_its_label(fill: str) -> None:
    """On a flat ground, what a fill changes is the labelled disc: centroid and area agree."""
    rng = np.random.default_rng(3)
    canvas = np.full((200, 220, 3), 0.45)
    cx, cy, r = 101.3, 97.6, 31.4
    independent._draw_circle(rng, canvas, cx, cy, r, fill)
    changed = np.abs(canvas - 0.45).max(axis=2) > 0.02
    region = ndimage.binary_fill_holes(changed)
    y, x = np.nonzero(region)
    assert np.hypot(x - cx, y - cy).max() <= r + 0.75
    assert region.sum() == pytest.approx(np.pi * r**2, rel=0.04)
    assert x.mean() == pytest.approx(cx, abs=0.3) and y.mean() == pytest.approx(cy, abs=0.3)


def test_occluded_circles_are_difficult() -> None:
    """A disc painted over another hides it: the one beneath loses visibility, the top keeps it."""
    scenes = make_scenes(40, seed=9, workers=1)
    visible = np.concatenate([s.visible for s in scenes])
    assert (visible < DIFFICULT_BELOW).any() and (visible > 0.99).mean() > 0.6


def test_negative_scenes_and_photos_hold_no_circle() -> None:
    scenes = negative_scenes(4, workers=1)
    assert all(len(s.circles) == 0 and s.circles.shape == (0, 3) for s in scenes)
    photos = photographs()
    assert tuple(photos) == PHOTOS
    assert all(p.dtype == np.uint8 and min(p.shape[:2]) >= 100 for p in photos.values())


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names |= {f"{base}.{a.name}" if node.module else f"{base}{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", EVALUATION_MODULES, ids=lambda p: p.name)
def test_evaluation_generator_shares_no_code_with_training(path: Path) -> None:
    """No module of the evaluation generator imports the training generator or its targets."""
    for name in _imported_modules(path):
        assert "synthetic" not in name and "targets" not in name and "trainer" not in name, name
        if name.startswith("."):  # package-relative: only the generator's own modules
            assert name.lstrip(".").split(".")[0] in {
                "independent",
                "independent_draw",
                "independent_backgrounds",
                "independent_degrade",
            }, name
