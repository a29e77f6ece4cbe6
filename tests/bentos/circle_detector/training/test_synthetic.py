"""The generator's labels are exact, seeded and honest about what is visible."""

from __future__ import annotations

import numpy as np

from bentos.circle_detector.training.synthetic import (
    HARD,
    TRAIN,
    SceneConfig,
    generate,
    make_scenes,
)


def test_same_seed_same_scenes_and_processes_do_not_matter() -> None:
    a = make_scenes(7, 4)
    b = make_scenes(7, 4, processes=2)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.circles, y.circles)
    assert not np.array_equal(a[0].image, make_scenes(8, 1)[0].image)


def test_scene_shapes_and_label_ranges() -> None:
    for scene in make_scenes(3, 10, HARD):
        assert scene.image.shape == (HARD.height, HARD.width) and scene.image.dtype == np.uint8
        assert scene.circles.shape[1] == 3 and len(scene.difficult) == len(scene.circles)
        assert ((scene.circles[:, 2] >= 4) & (scene.circles[:, 2] <= 120)).all()


def test_a_lone_disc_is_labelled_where_it_is_drawn() -> None:
    cfg = SceneConfig(
        circles=(1, 1),
        distractors=(0, 0),
        noise=(0.0, 0.0),
        blur=(0.0, 0.0),
        p_jpeg=0.0,
        p_invert=0.0,
        contrast=(1.0, 1.0),
        min_contrast=0.3,
    )
    for seed in range(20):
        scene = generate(np.random.default_rng(seed), cfg)
        (cx, cy, r), difficult = scene.circles[0], scene.difficult[0]
        inside_image = r < cx < 255 - r and r < cy < 255 - r
        if not inside_image or difficult:
            continue
        img = scene.image.astype(float)
        yy, xx = np.mgrid[0:256, 0:256]
        inner = np.hypot(xx - cx, yy - cy) < r - 1.5
        ring = (np.hypot(xx - cx, yy - cy) > r + 1.5) & (np.hypot(xx - cx, yy - cy) < r + 4)
        # The disc's inside and the band just outside its label differ clearly.
        assert abs(img[inner].mean() - img[ring].mean()) > 20


def test_circles_cut_by_the_border_or_hidden_are_difficult() -> None:
    scenes = make_scenes(11, 60, TRAIN)
    cut = [
        d
        for s in scenes
        for (cx, cy, _r), d in zip(s.circles, s.difficult, strict=True)
        if not (0 <= cx <= 255 and 0 <= cy <= 255)
    ]
    assert cut and all(cut)  # a centre outside the image is never required
    assert any(s.difficult.any() for s in scenes) and any((~s.difficult).any() for s in scenes)
