"""Where the detector wins and loses on the independent set: figures per category.

Every detection of every image is matched once at IoU 0.5 (VOC rules, as `metrics`); greedy
matching in score order means that the detections above any threshold keep the same labels,
so the operating point and the PR curves come from the same matching. Per circle category
(radius, fill, polarity, shadow, highlight) the figure is recall at the operating point; per
scene category (background, degradation, colour) recall, precision, false circles per image
and AP50 over the images of that category. Radius bins also get COCO-style AP50 (truth outside
the bin and unmatched detections whose radius is outside it are ignored) and the false circles
by detected radius.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import best_f1
from .independent import Scene
from .metrics import FP, IGNORED, TP, average_precision, match_detections

RADIUS_BINS: tuple[tuple[str, float, float], ...] = (
    ("<8", 0.0, 8.0),
    ("8-15", 8.0, 15.0),
    ("15-45", 15.0, 45.0),
    (">45", 45.0, float("inf")),
)


@dataclass(frozen=True)
class Matched:
    """All detections (rows cx, cy, r, score) of a set, matched once against its truth."""

    predictions: list[np.ndarray]
    truths: list[np.ndarray]
    difficult: list[np.ndarray]
    labels: list[np.ndarray]
    taken_by: list[np.ndarray]

    @classmethod
    def of(
        cls, predictions: list[np.ndarray], truths: list[np.ndarray], difficult: list[np.ndarray]
    ) -> Matched:
        pairs = [
            match_detections(p, t, d, 0.5)
            for p, t, d in zip(predictions, truths, difficult, strict=True)
        ]
        return cls(
            [np.asarray(p).reshape(-1, 4) for p in predictions],
            [np.asarray(t).reshape(-1, 3) for t in truths],
            [np.asarray(d, dtype=bool) for d in difficult],
            [a for a, _ in pairs],
            [b for _, b in pairs],
        )

    def found(self, i: int, threshold: float) -> np.ndarray:
        """Per truth circle of image i: matched by a detection scoring at least `threshold`."""
        keep = (self.predictions[i][:, 3] >= threshold) & (self.labels[i] == TP)
        hit = np.zeros(len(self.truths[i]), dtype=bool)
        hit[self.taken_by[i][keep]] = True
        return hit

    def false_positives(self, i: int, threshold: float) -> np.ndarray:
        """The false detections (rows) of image i at `threshold`."""
        p = self.predictions[i]
        return p[(p[:, 3] >= threshold) & (self.labels[i] == FP)]


def _recall(found: int, total: int) -> float:
    return found / total if total else float("nan")


def scene_summary(m: Matched, images: Sequence[int], threshold: float) -> dict:
    """Recall, precision, false circles per image and AP50 over some images of the set."""
    images = list(images)
    n_truth = int(sum((~m.difficult[i]).sum() for i in images))
    found = sum(int((m.found(i, threshold) & ~m.difficult[i]).sum()) for i in images)
    fp = sum(len(m.false_positives(i, threshold)) for i in images)
    scores = np.concatenate([m.predictions[i][:, 3] for i in images] or [np.zeros(0)])
    labels = np.concatenate([m.labels[i] for i in images] or [np.zeros(0, dtype=np.int64)])
    return {
        "images": len(images),
        "circles": n_truth,
        "recall": _recall(found, n_truth),
        "precision": found / max(found + fp, 1),
        "false_positives": fp,
        "false_per_image": fp / max(len(images), 1),
        "ap50": average_precision(scores, labels, n_truth) if n_truth else float("nan"),
    }


def by_scene_tag(m: Matched, tags: Sequence[str], threshold: float) -> dict[str, dict]:
    groups: dict[str, list[int]] = {}
    for i, tag in enumerate(tags):
        groups.setdefault(tag, []).append(i)
    return {tag: scene_summary(m, members, threshold) for tag, members in groups.items()}


def by_circle_tag(
    m: Matched, tags: Sequence[Sequence[object]], threshold: float
) -> dict[str, dict]:
    """Recall per value of a per-circle attribute (difficult circles left out)."""
    totals: dict[str, list[int]] = {}
    for i, per_circle in enumerate(tags):
        found = m.found(i, threshold)
        for j, tag in enumerate(per_circle):
            if m.difficult[i][j]:
                continue
            entry = totals.setdefault(str(tag), [0, 0])
            entry[0] += int(found[j])
            entry[1] += 1
    return {
        tag: {"circles": n, "found": f, "recall": _recall(f, n)}
        for tag, (f, n) in sorted(totals.items())
    }


def radius_bin(r: np.ndarray) -> np.ndarray:
    """The `RADIUS_BINS` name of each radius."""
    names = np.array([name for name, _, _ in RADIUS_BINS])
    edges = np.array([hi for _, _, hi in RADIUS_BINS[:-1]])
    return names[np.searchsorted(edges, np.asarray(r), side="right")]


def by_radius(m: Matched, threshold: float) -> dict[str, dict]:
    """Recall and COCO-style AP50 per radius bin, and the false circles by detected radius."""
    recall = by_circle_tag(m, [radius_bin(t[:, 2]) for t in m.truths], threshold)
    out = {}
    for name, lo, hi in RADIUS_BINS:
        scores, labels, n_truth, fp = [], [], 0, 0
        for p, t, d in zip(m.predictions, m.truths, m.difficult, strict=True):
            outside = (t[:, 2] < lo) | (t[:, 2] >= hi)
            lab, _ = match_detections(p, t, d | outside, 0.5)
            stray = (lab == FP) & ((p[:, 2] < lo) | (p[:, 2] >= hi))
            lab[stray] = IGNORED
            scores.append(p[:, 3])
            labels.append(lab)
            n_truth += int((~(d | outside)).sum())
            fp += int(((lab == FP) & (p[:, 3] >= threshold)).sum())
        ap = average_precision(np.concatenate(scores), np.concatenate(labels), n_truth)
        row = recall.get(name, {"circles": 0, "found": 0, "recall": float("nan")})
        out[name] = {**row, "ap50": ap if n_truth else float("nan"), "false_positives": fp}
    return out


def set_summary(m: Matched, threshold: float) -> dict:
    """Best-F1 threshold and the by-radius figures: what every positive set gets."""
    scores = np.concatenate([p[:, 3] for p in m.predictions] or [np.zeros(0)])
    labels = np.concatenate(m.labels or [np.zeros(0, dtype=np.int64)])
    keep = labels != IGNORED
    n_truth = int(sum((~d).sum() for d in m.difficult))
    return {
        "best_f1": best_f1(scores[keep], labels[keep], n_truth),
        "by_radius": by_radius(m, threshold),
    }


def independent_breakdown(m: Matched, scenes: Sequence[Scene], threshold: float) -> dict:
    """Everything the issue asks of the independent set, per category."""
    return {
        **set_summary(m, threshold),
        "by_fill": by_circle_tag(m, [s.fills for s in scenes], threshold),
        "by_polarity": by_circle_tag(m, [s.polarity for s in scenes], threshold),
        "by_shadow": by_circle_tag(m, [s.shadow for s in scenes], threshold),
        "by_highlight": by_circle_tag(m, [s.highlight for s in scenes], threshold),
        "by_background": by_scene_tag(m, [s.background for s in scenes], threshold),
        "by_background_group": by_scene_tag(m, [s.background_group for s in scenes], threshold),
        "by_degradation": by_scene_tag(m, [s.degradation for s in scenes], threshold),
        "by_colour": by_scene_tag(m, ["colour" if s.colour else "grey" for s in scenes], threshold),
    }


def false_circles(m: Matched, threshold: float, images: Sequence[int] | None = None) -> dict:
    """False circles (detections matched to no circle) at `threshold`, per image.

    On a circle-free set every detection is false; on a set with circles, true and difficult
    ones are not counted. `images` restricts it to some images of the set."""
    images = range(len(m.predictions)) if images is None else images
    counts = [len(m.false_positives(i, threshold)) for i in images]
    return {
        "images": len(counts),
        "false_positives": sum(counts),
        "false_per_image": sum(counts) / max(len(counts), 1),
        "worst_image": max(counts, default=0),
    }
