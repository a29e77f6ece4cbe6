"""The coins ground truth (`data/coins_truth.json`), fitted to the photograph's edges.

Each coin's circle is a robust least-squares fit to the Canny edge pixels (sigma 2) near it,
in a window that shrinks from 8 to 3 px around the current fit until the fit stops moving. The
first truth was fitted in a fixed 3.5 px window around a rough guess: for a coin whose guess was
more than that off on one side (or a slightly elliptical coin), the real edge there fell outside
the window, and the label's centre sat up to 2.5 px from the middle of the coin's pixels. The
detector does not take part: its output is never an input here.

`python -m bentos.circle_detector.training.coins_truth` refits from the committed file and
writes it back; a refit of the committed truth leaves it where it is (a test checks it).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import optimize

from ..model.artifacts import write_atomically

TRUTH_FILE = Path(str(resources.files(__package__).joinpath("data/coins_truth.json")))
CANNY_SIGMA = 2.0
FIRST_WINDOW, LAST_WINDOW = 8.0, 3.0  # px either side of the fitted radius
METHOD = (
    f"robust circle fit (soft L1, scale 1 px) to skimage Canny edges (sigma {CANNY_SIGMA}) within"
    f" a window shrinking from {FIRST_WINDOW:g} to {LAST_WINDOW:g} px of the fit, to convergence;"
    " bentos/circle_detector/training/coins_truth.py"
)


class TruthFileError(ValueError):
    """A truth file that cannot be read as circles."""


def read_truth(path: Path = TRUTH_FILE) -> np.ndarray:
    """The circles (K, 3) of cx, cy, r in a truth file; `TruthFileError` naming what is wrong."""
    try:
        rows = json.loads(Path(path).read_text())["circles"]
        circles = np.array([[c["cx"], c["cy"], c["r"]] for c in rows], dtype=float).reshape(-1, 3)
    except OSError as exc:
        raise TruthFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise TruthFileError(
            f"{path}: not a truth file (JSON with circles of numeric cx, cy, r): {exc!r}"
        ) from exc
    if not np.isfinite(circles).all() or (circles[:, 2] <= 0).any():
        raise TruthFileError(f"{path}: every cx, cy must be finite and every r positive")
    return circles


def edge_pixels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the image's Canny edge pixels."""
    import skimage.feature

    ys, xs = np.nonzero(skimage.feature.canny(image.astype(float), sigma=CANNY_SIGMA))
    return xs.astype(float), ys.astype(float)


def fit_circle(xs: np.ndarray, ys: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(cx, cy, r) fitted to the edge pixels near `start`, the window shrinking as it settles."""
    fit, window = np.asarray(start, dtype=float), FIRST_WINDOW
    for _ in range(50):
        near = np.abs(np.hypot(xs - fit[0], ys - fit[1]) - fit[2]) < window
        new = optimize.least_squares(
            _distances, fit, loss="soft_l1", f_scale=1.0, args=(xs[near], ys[near])
        ).x
        settled = window == LAST_WINDOW and np.abs(new - fit).max() < 1e-4
        fit, window = new, max(LAST_WINDOW, 0.7 * window)
        if settled:
            break
    return fit


def _distances(circle: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.hypot(xs - circle[0], ys - circle[1]) - circle[2]


def fit_truth(image: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """One fitted circle (K, 3) per start circle (K, 3)."""
    xs, ys = edge_pixels(image)
    return np.array([fit_circle(xs, ys, start) for start in starts]).reshape(-1, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=TRUTH_FILE, help=f"({TRUTH_FILE})")
    args = parser.parse_args(argv)
    import skimage.data

    try:
        starts = read_truth(args.file)
    except TruthFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fitted = fit_truth(skimage.data.coins(), starts)
    circles = [
        {"cx": round(cx, 2), "cy": round(cy, 2), "r": round(r, 2)} for cx, cy, r in fitted.tolist()
    ]
    body = {"image": "skimage.data.coins()", "method": METHOD, "circles": circles}
    write_atomically(args.file, (json.dumps(body, indent=1) + "\n").encode())
    moved = np.hypot(*(fitted[:, :2] - starts[:, :2]).T)
    print(f"wrote {args.file}: {len(circles)} coins, centres moved {moved.mean():.3f} px mean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
