"""Do the scores mean what they say? Reliability, expected calibration error and best F1.

The detection score claims to be the probability that a detection is a real circle. Checked
over detections: each detection is labelled by the same VOC matching as the metrics (IoU 0.5,
best score first; one matched to a *difficult* circle is left out), then detections are put in
10 equal-width score bins. ECE is the count-weighted mean of |share of true positives - mean
score| over the bins; it speaks to precision only (a missed circle has no score to calibrate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .metrics import IGNORED, TP, label_detections

BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_score: float  # nan when empty
    precision: float  # share of true positives; nan when empty


@dataclass(frozen=True)
class Calibration:
    ece: float
    ece_above_0_1: float  # the same over detections scoring 0.1 or more (the many near-0 ones
    # of the lowest bin, almost all false and scored so, make ECE look smaller)
    max_gap: float  # the largest |precision - mean score| over bins with >= 20 detections
    detections: int
    bins: list[ReliabilityBin]

    def as_json(self) -> dict:
        return asdict(self)


def pooled_labels(
    predictions: list[np.ndarray],
    truths: list[np.ndarray],
    difficult: list[np.ndarray],
    iou_threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and TP/FP labels of every detection of every image; ignored ones dropped."""
    if not predictions:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    labels = np.concatenate(
        [
            label_detections(p, t, d, iou_threshold)
            for p, t, d in zip(predictions, truths, difficult, strict=True)
        ]
    )
    scores = np.concatenate([np.asarray(p).reshape(-1, 4)[:, 3] for p in predictions])
    keep = labels != IGNORED
    return scores[keep].astype(np.float64), labels[keep]


def calibration(scores: np.ndarray, hits: np.ndarray, bins: int = BINS) -> Calibration:
    """Reliability table and ECE of scores in [0, 1] against 0/1 outcomes (`hits`)."""
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    hits = np.asarray(hits).astype(np.float64)
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    table, ece, upper, max_gap = [], 0.0, 0.0, 0.0
    n_upper = int((scores >= 1.0 / bins).sum())
    for b in range(bins):
        member = index == b
        n = int(member.sum())
        mean = float(scores[member].mean()) if n else float("nan")
        share = float(hits[member].mean()) if n else float("nan")
        if n:
            ece += n / len(scores) * abs(share - mean)
            upper += n / max(n_upper, 1) * abs(share - mean) if b > 0 else 0.0
            if n >= 20:
                max_gap = max(max_gap, abs(share - mean))
        table.append(ReliabilityBin(b / bins, (b + 1) / bins, n, mean, share))
    nan = float("nan")
    return Calibration(
        ece if len(scores) else nan, upper if n_upper else nan, max_gap, len(scores), table
    )


def detection_calibration(
    predictions: list[np.ndarray], truths: list[np.ndarray], difficult: list[np.ndarray]
) -> Calibration:
    scores, labels = pooled_labels(predictions, truths, difficult)
    return calibration(scores, labels == TP)


def best_f1(scores: np.ndarray, labels: np.ndarray, n_truth: int) -> dict[str, float]:
    """The score threshold that maximises F1 at IoU 0.5, with its precision and recall."""
    if len(scores) == 0 or n_truth == 0:
        return {"threshold": float("nan"), "precision": 0.0, "recall": 0.0, "f1": 0.0}
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order] == TP
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    last = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold keeps all of equal score
    precision, recall = tp / (tp + fp), tp / n_truth
    f1 = np.where(last, 2 * precision * recall / np.maximum(precision + recall, 1e-12), -1.0)
    k = int(np.argmax(f1))
    return {
        "threshold": float(ranked[k]),
        "precision": float(precision[k]),
        "recall": float(recall[k]),
        "f1": float(f1[k]),
    }


def save_reliability_plot(by_set: dict[str, Calibration], path: Path) -> None:
    """One panel per data set: share of true positives against mean score, per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2,
        len(by_set),
        figsize=(5.5 * len(by_set), 6.5),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
    )
    for col, (name, cal) in enumerate(by_set.items()):
        ax, counts = axes[0, col], axes[1, col]
        lows = np.array([b.low for b in cal.bins])
        width = 1.0 / len(cal.bins)
        share = np.array([b.precision for b in cal.bins])
        mean = np.array([b.mean_score for b in cal.bins])
        ax.bar(lows, np.nan_to_num(share), width=width, align="edge", alpha=0.7, label="TP share")
        ax.plot(mean, share, "o-", color="C3", label="at the bin's mean score")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
        ax.set(title=f"{name}: ECE {cal.ece:.3f}", xlabel="score", ylabel="share of true")
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        counts.bar(lows, [b.count for b in cal.bins], width=width, align="edge", color="grey")
        counts.set(xlim=(0, 1), yscale="log", xlabel="score", ylabel="detections")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
