"""The model's figures beyond the summary table: breakdowns, calibration and false circles.

Only the model's own predictions are analysed (the Hough baselines have rank scores, which have
no calibration to check). Sets with circles get the best-F1 threshold, recall and AP50 by
radius and a reliability table; the independent set also its per-category breakdowns; sets
without circles get false circles per image, per photograph or per background.
"""

from __future__ import annotations

from .breakdown import Matched, by_scene_tag, false_circles, independent_breakdown, set_summary
from .calibration import Calibration, detection_calibration
from .evaluation import MODEL, Dataset

#: The sets whose reliability diagram is drawn (when evaluated).
RELIABILITY_SETS = ("independent", "hard-synthetic")


def analyse(
    datasets: list[Dataset], predictions: dict, threshold: float
) -> tuple[dict[str, dict], dict[str, Calibration]]:
    """Per data set the analysis (JSON-ready) and, for sets with circles, its calibration."""
    analysis: dict[str, dict] = {}
    calibrations: dict[str, Calibration] = {}
    for data in datasets:
        found = predictions[data.name][MODEL]
        matched = Matched.of(found, data.truths, data.difficult)
        if data.has_circles:
            entry = (
                independent_breakdown(matched, data.scenes, threshold)
                if data.scenes
                else set_summary(matched, threshold)
            )
            calibrations[data.name] = detection_calibration(found, data.truths, data.difficult)
            entry["calibration"] = calibrations[data.name].as_json()
        else:
            entry = {"false_circles": false_circles(matched, threshold)}
            if data.image_names:
                entry["by_image"] = {
                    name: false_circles(matched, threshold, [i])["false_positives"]
                    for i, name in enumerate(data.image_names)
                }
            if data.scenes:
                for key, tags in (
                    ("by_background", [s.background for s in data.scenes]),
                    ("by_degradation", [s.degradation for s in data.scenes]),
                ):
                    entry[key] = {
                        tag: {k: row[k] for k in ("images", "false_positives", "false_per_image")}
                        for tag, row in by_scene_tag(matched, tags, threshold).items()
                    }
        analysis[data.name] = entry
    parts = [analysis[n]["false_circles"] for n in NEGATIVE_SETS if n in analysis]
    if len(parts) > 1:  # the negatives set as a whole: generated scenes and photographs
        analysis["negatives"] = {"false_circles": _pooled(parts)}
    return analysis, calibrations


#: The two sources of the negatives set, each reported alone and then together.
NEGATIVE_SETS = ("negative-scenes", "negative-photos")


def _pooled(parts: list[dict]) -> dict:
    images = sum(p["images"] for p in parts)
    fp = sum(p["false_positives"] for p in parts)
    return {
        "images": images,
        "false_positives": fp,
        "false_per_image": fp / max(images, 1),
        "worst_image": max(p["worst_image"] for p in parts),
    }


#: Short column headings for the text tables.
HEADINGS = {
    "images": "images",
    "circles": "circles",
    "recall": "recall",
    "precision": "prec",
    "false_positives": "FP",
    "false_per_image": "FP/img",
    "ap50": "AP50",
}


def _rows(title: str, table: dict[str, dict], columns: tuple[str, ...]) -> list[str]:
    lines = [f"  {title:<16}" + "".join(f"{HEADINGS[c]:>9}" for c in columns)]
    for tag, row in table.items():
        cells = []
        for c in columns:
            v = row.get(c, float("nan"))
            cells.append(f"{v:9d}" if isinstance(v, int) else f"{v:9.3f}")
        lines.append(f"  {tag:<16}" + "".join(cells))
    return lines


def format_analysis(analysis: dict[str, dict], threshold: float) -> str:
    """The analysis as text: one block per data set."""
    lines: list[str] = []
    scene_cols = ("images", "circles", "recall", "precision", "false_per_image", "ap50")
    for name, entry in analysis.items():
        lines.append("")
        if "false_circles" in entry:
            fc = entry["false_circles"]
            lines.append(
                f"{name}: {fc['false_per_image']:.3f} false circles per image at {threshold}"
                f" ({fc['false_positives']} in {fc['images']} images, at most"
                f" {fc['worst_image']} in one)"
            )
            if "by_image" in entry:
                lines.append("  " + ", ".join(f"{k} {v}" for k, v in entry["by_image"].items()))
            for key in ("by_background", "by_degradation"):
                if key in entry:
                    cols = ("images", "false_positives", "false_per_image")
                    lines += _rows(key[3:], entry[key], cols)
            continue
        best, cal = entry["best_f1"], entry["calibration"]
        lines.append(
            f"{name}: best F1 {best['f1']:.3f} at score {best['threshold']:.3f}"
            f" (P {best['precision']:.3f}, R {best['recall']:.3f});"
            f" ECE {cal['ece']:.4f} over {cal['detections']} detections"
            f" ({cal['ece_above_0_1']:.4f} over those scoring >= 0.1)"
            f" (largest bin gap {cal['max_gap']:.3f})"
        )
        radius_cols = ("circles", "recall", "ap50", "false_positives")
        lines += _rows("radius px", entry["by_radius"], radius_cols)
        for key in ("by_fill", "by_polarity", "by_shadow", "by_highlight"):
            if key in entry:
                lines += _rows(key[3:], entry[key], ("circles", "recall"))
        for key in ("by_background", "by_background_group", "by_degradation", "by_colour"):
            if key in entry:
                lines += _rows(key[3:], entry[key], scene_cols)
    return "\n".join(lines)
