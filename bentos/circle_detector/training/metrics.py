"""Detection metrics on circles: exact circle IoU matching, AP, and the operating point.

Matching follows PASCAL VOC: detections in descending score take the unmatched ground truth of
highest IoU; a detection whose best match is a *difficult* circle is ignored (neither true nor
false positive), and difficult circles are never counted as misses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.decoding import circle_iou_matrix

TP, FP, IGNORED = 1, 0, -1
#: The IoU thresholds of COCO's AP; 0.5 and 0.75 are among them exactly.
COCO_IOUS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


def match_detections(
    detections: np.ndarray, truth: np.ndarray, difficult: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per detection (rows cx, cy, r, score): its label (TP, FP, IGNORED) and the index of the
    ground-truth circle it took (-1 for none)."""
    detections = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 3)
    difficult = np.asarray(difficult, dtype=bool).reshape(-1)
    labels = np.full(len(detections), FP, dtype=np.int64)
    taken_by = np.full(len(detections), -1, dtype=np.int64)
    if len(detections) == 0 or len(truth) == 0:
        return labels, taken_by
    order = np.argsort(-detections[:, 3], kind="stable")
    iou = circle_iou_matrix(detections[:, :3], truth)
    taken = np.zeros(len(truth), dtype=bool)
    for i in order:
        candidates = np.where(iou[i] >= iou_threshold)[0]
        free = candidates[~taken[candidates] | difficult[candidates]]
        if len(free) == 0:
            continue
        best = free[np.argmax(iou[i, free])]
        taken_by[i] = best
        if difficult[best]:
            labels[i] = IGNORED
        else:
            labels[i] = TP
            taken[best] = True
    return labels, taken_by


def label_detections(
    detections: np.ndarray, truth: np.ndarray, difficult: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Per detection (rows cx, cy, r, score): TP (1), FP (0) or IGNORED (-1)."""
    return match_detections(detections, truth, difficult, iou_threshold)[0]


def truth_found(
    detections: np.ndarray, truth: np.ndarray, difficult: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """Per ground-truth circle: whether a detection matched it (difficult ones included)."""
    _, taken_by = match_detections(detections, truth, difficult, iou_threshold)
    found = np.zeros(len(np.asarray(truth).reshape(-1, 3)), dtype=bool)
    found[taken_by[taken_by >= 0]] = True
    return found


def average_precision(scores: np.ndarray, labels: np.ndarray, n_truth: int) -> float:
    """All-point interpolated AP (VOC 2010+) from pooled detections; ignored ones dropped."""
    keep = labels != IGNORED
    scores, labels = scores[keep], labels[keep]
    if n_truth == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(labels[order] == TP)
    fp = np.cumsum(labels[order] == FP)
    recall = np.concatenate([[0.0], tp / n_truth, [1.0]])
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def pr_curve(scores: np.ndarray, labels: np.ndarray, n_truth: int) -> tuple[np.ndarray, np.ndarray]:
    keep = labels != IGNORED
    order = np.argsort(-scores[keep], kind="stable")
    hits = labels[keep][order] == TP
    tp, fp = np.cumsum(hits), np.cumsum(~hits)
    return tp / max(n_truth, 1), tp / np.maximum(tp + fp, 1)


@dataclass(frozen=True)
class Report:
    """Everything `evaluate` prints for one method on one data set."""

    ap50: float
    ap75: float
    ap: float  # COCO's AP: the mean of AP at IoU 0.50, 0.55, ..., 0.95
    precision: float
    recall: float
    f1: float
    centre_error: float  # mean px over true positives at the operating point (IoU 0.5)
    radius_error: float
    ms_per_image: float
    n_truth: int
    true_positives: int
    false_positives: int


def evaluate_predictions(
    predictions: list[np.ndarray],
    truths: list[np.ndarray],
    difficult: list[np.ndarray],
    score_threshold: float,
    ms_per_image: float,
) -> tuple[Report, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Pool per-image predictions (rows cx, cy, r, score) into one `Report` and PR curves."""
    n_truth = int(sum((~d).sum() for d in difficult))
    scores = np.concatenate([p[:, 3] for p in predictions]) if predictions else np.zeros(0)
    pooled: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for thr in COCO_IOUS:
        labels = [
            label_detections(p, t, d, thr)
            for p, t, d in zip(predictions, truths, difficult, strict=True)
        ]
        pooled[thr] = (scores, np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64))
    tp = fp = 0
    centre_err, radius_err = [], []
    for p, t, d in zip(predictions, truths, difficult, strict=True):
        p = p[p[:, 3] >= score_threshold]
        labels = label_detections(p, t, d, 0.5)
        tp += int((labels == TP).sum())
        fp += int((labels == FP).sum())
        if (labels == TP).any() and len(t):
            iou = circle_iou_matrix(p[labels == TP, :3], t)
            iou[:, np.asarray(d, dtype=bool)] = -1
            match = t[np.argmax(iou, axis=1)]
            hits = p[labels == TP]
            centre_err.extend(np.hypot(hits[:, 0] - match[:, 0], hits[:, 1] - match[:, 1]))
            radius_err.extend(np.abs(hits[:, 2] - match[:, 2]))
    precision = tp / max(tp + fp, 1)
    recall = tp / max(n_truth, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    report = Report(
        ap50=average_precision(*pooled[0.5], n_truth),
        ap75=average_precision(*pooled[0.75], n_truth),
        ap=float(np.mean([average_precision(*pooled[t], n_truth) for t in COCO_IOUS])),
        precision=precision,
        recall=recall,
        f1=f1,
        centre_error=float(np.mean(centre_err)) if centre_err else float("nan"),
        radius_error=float(np.mean(radius_err)) if radius_err else float("nan"),
        ms_per_image=ms_per_image,
        n_truth=n_truth,
        true_positives=tp,
        false_positives=fp,
    )
    curves = {f"AP{round(k * 100)}": pr_curve(*pooled[k], n_truth) for k in (0.5, 0.75)}
    return report, curves
