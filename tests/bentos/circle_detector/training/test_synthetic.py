"""The generator's labels are exact, seeded and honest about what is visible."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bentos.circle_detector.training import synthetic
from bentos.circle_detector.training.synthetic import (
    HARD,
    TRAIN,
    SceneConfig,
    circle_mask,
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


def test_discs_and_rings_are_drawn_at_their_labelled_radius() -> None:
    disc = circle_mask(200, 200, 99.3, 100.6, 37.4, 0.0)
    assert np.sqrt(disc.sum() / np.pi) == pytest.approx(37.4, abs=0.01)
    yy, xx = np.mgrid[0:200, 0:200]
    assert (disc * xx).sum() / disc.sum() == pytest.approx(99.3, abs=0.01)
    assert (disc * yy).sum() / disc.sum() == pytest.approx(100.6, abs=0.01)
    ring = circle_mask(200, 200, 100.0, 100.0, 30.0, 4.0)
    assert ring.sum() == pytest.approx(np.pi * (30.0**2 - 26.0**2), rel=0.01)


def test_a_lone_disc_has_its_edge_at_the_label() -> None:
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
    checked = 0
    for seed in range(30):
        scene = generate(np.random.default_rng(seed), cfg)
        (cx, cy, r), difficult = scene.circles[0], scene.difficult[0]
        if difficult or not (r + 8 < cx < 247 - r and r + 8 < cy < 247 - r) or r < 8:
            continue
        yy, xx = np.mgrid[0:256, 0:256]
        d = np.hypot(xx - cx, yy - cy)
        img = scene.image.astype(float)
        just_in = img[(d > r - 2.5) & (d < r - 1)].mean()
        just_out = img[(d > r + 1) & (d < r + 2.5)].mean()
        deeper_in = img[(d > r - 6.5) & (d < r - 5)].mean()
        # The step across the labelled edge dwarfs any step inside the disc.
        assert abs(just_in - just_out) > max(abs(deeper_in - just_in), 10)
        checked += 1
    assert checked >= 5


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


def test_distractors_get_no_round_fill_and_their_own_centre(monkeypatch) -> None:
    """A distractor once took "sphere" and "coin" fills centred on the image: unlabelled circles."""
    calls = []
    real_fill = synthetic.fill

    def recording_fill(rng, shape, centre, r, ref, kinds=synthetic.CIRCLE_FILLS):
        calls.append((centre, kinds))
        return real_fill(rng, shape, centre, r, ref, kinds)

    monkeypatch.setattr(synthetic, "fill", recording_fill)
    only_distractors = SceneConfig(circles=(0, 0), distractors=(6, 6))
    for seed in range(5):
        generate(np.random.default_rng(seed), only_distractors)
    assert calls and all(kinds == synthetic.DISTRACTOR_FILLS for _, kinds in calls)
    assert {"sphere", "coin"}.isdisjoint(synthetic.DISTRACTOR_FILLS)
    assert len({centre for centre, _ in calls}) == len(calls)  # not all the image centre


@pytest.mark.parametrize("kind", ["sphere", "coin"])
def test_round_fills_are_centred_on_the_object(kind: str) -> None:
    rng = np.random.default_rng(0)
    pattern = synthetic.fill(rng, (64, 96), (70.0, 20.0), 12.0, 0.5, (kind,))
    yy, xx = np.mgrid[0:64, 0:96]
    deviation = np.abs(pattern - np.median(pattern))
    if kind == "sphere":  # brightest-to-darkest change is radial around the centre
        near = np.hypot(xx - 70, yy - 20) < 4
        assert deviation[near].mean() > deviation[~near].mean()
    else:  # the rim lies at 0.88 r from the centre
        d = np.hypot(xx - 70, yy - 20)
        rim = np.abs(d - 0.88 * 12) < 1
        far = d > 20
        assert deviation[rim].mean() > 2 * deviation[far].mean()


def test_a_crowd_is_many_labelled_circles_of_one_size() -> None:
    crowd_only = SceneConfig(circles=(0, 0), distractors=(0, 0), p_crowd=1.0)
    sizes = []
    for seed in range(12):
        radii = generate(np.random.default_rng(seed), crowd_only).circles[:, 2]
        assert len(radii) >= 3  # at least 6 where they fit, fewer of the largest
        assert radii.max() / radii.min() <= 1.2 / 0.85 + 1e-6
        sizes.append(float(np.median(radii)))
    assert max(sizes) / min(sizes) > 2  # one size per crowd, not one size for every crowd


@pytest.mark.parametrize("size", [3.0, 12.0, 40.0])
def test_a_wobbly_disc_is_at_least_2_px_from_round(size: float) -> None:
    """Disc crowds and blob distractors are unlabelled: each must be visibly no circle."""
    for seed in range(5):
        mask = synthetic.blob_mask(np.random.default_rng(seed), 160, 160, 80.0, 80.0, size)
        ys, xs = np.nonzero(mask > 0.5)
        cx, cy = xs.mean(), ys.mean()
        edge = (mask > 0.5) & ~(np.roll(mask > 0.5, 1, 0) & np.roll(mask > 0.5, -1, 0))
        edge |= (mask > 0.5) & ~(np.roll(mask > 0.5, 1, 1) & np.roll(mask > 0.5, -1, 1))
        ey, ex = np.nonzero(edge)
        radius = np.hypot(ex - cx, ey - cy)
        assert radius.max() - radius.min() >= 2.0


def test_a_disc_field_adds_texture_and_no_label() -> None:
    field_only = SceneConfig(circles=(0, 0), distractors=(0, 0), noise=(0.0, 0.0), p_jpeg=0.0)
    for seed in range(4):
        plain = generate(np.random.default_rng(seed), field_only)
        crowded = generate(np.random.default_rng(seed), replace(field_only, p_disc_field=1.0))
        assert len(crowded.circles) == 0
        assert crowded.image.astype(float).std() > plain.image.astype(float).std() + 2


def test_tiny_lookalikes_are_small_unlabelled_non_circles(monkeypatch) -> None:
    """Version 4's false circles on circle-free scenes were all 4 to 11 px: squares, polygons
    and blobs that size must be shown to the network as what they are, not circles."""
    sizes = []
    real_distractor = synthetic.distractor

    def recording_distractor(*args, **kwargs):
        mask, centre, size = real_distractor(*args, **kwargs)
        sizes.append(size)
        return mask, centre, size

    monkeypatch.setattr(synthetic, "distractor", recording_distractor)
    lookalikes_only = SceneConfig(circles=(0, 0), distractors=(0, 0), p_tiny_lookalike=1.0)
    for seed in range(6):
        scene = generate(np.random.default_rng(seed), lookalikes_only)
        assert len(scene.circles) == 0
    low, high = synthetic.TINY_LOOKALIKE
    assert len(sizes) >= 6 * 3 and all(low <= s <= high for s in sizes)
    assert min(sizes) < 5.0  # below the ordinary distractors' smallest size


def test_a_dim_exposure_has_photon_noise_that_grows_with_brightness() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((200, 200), 0.2, dtype=np.float32)
    dark, dark_span, dark_shot = synthetic.dim_exposure(rng, flat, 0.8)
    rng = np.random.default_rng(0)  # the same exposure, a brighter scene
    bright, bright_span, bright_shot = synthetic.dim_exposure(rng, flat * 4, 0.8)
    assert bright.std() > 1.5 * dark.std()  # Poisson: variance grows with the signal
    assert bright_shot > dark_shot and dark_span == bright_span < 0.8 * 2.0 * 0.4 + 1e-6
    for image, shot in ((dark, dark_shot), (bright, bright_shot)):
        assert 0.75 < float(image.std()) / shot < 1.33  # the noise the labels are judged by


def test_dim_scenes_stay_labelled_and_mark_drowned_circles_difficult() -> None:
    dim = replace(SceneConfig(circles=(4, 8)), p_shot_noise=1.0)
    scenes = [generate(np.random.default_rng(seed), dim) for seed in range(8)]
    assert all(s.image.dtype == np.uint8 for s in scenes)
    assert sum(len(s.circles) for s in scenes) >= 32
    assert any(s.difficult.any() for s in scenes) and any((~s.difficult).any() for s in scenes)
