"""Images with no circle in them: where every detection is a false circle.

Two sources: generated scenes of the independent evaluation generator with the circles left
out (same backgrounds, distractors and degradations), and real
photographs from scikit-image that were checked by eye to hold no circle. Looked at and left
out because they hold circles or near-circles: `page` (the letter o), `camera` (buttons, domes),
`rocket` (the mission logo, round lamps), `logo` (a disc); `coins` and `moon` hold them by
design.
"""

from __future__ import annotations

import numpy as np

from .independent import NEGATIVE_SCENES, NEGATIVE_SEED, Scene, make_scenes

#: skimage.data images with no circle (looked at one by one).
PHOTOS = ("brick", "grass", "gravel", "checkerboard", "horse", "text")


def negative_scenes(
    count: int = NEGATIVE_SCENES, seed: int = NEGATIVE_SEED, workers: int | None = None
) -> list[Scene]:
    """Circle-free generated scenes (a seed of their own, so not the positives' backgrounds)."""
    return make_scenes(count, seed, with_circles=False, workers=workers, progress="negative scenes")


def photographs() -> dict[str, np.ndarray]:
    """The circle-free skimage photographs as uint8 grey arrays, by name."""
    try:
        import skimage.data
    except ImportError as exc:  # a dev dependency
        raise SystemExit("the negative photos need scikit-image: pip install -e '.[dev]'") from exc
    out = {}
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.dtype == np.bool_:  # horse is a silhouette mask
            image = np.where(image, 255, 0).astype(np.uint8)
        out[name] = image
    return out
