"""Scoring the detector and the Hough baselines side by side on the same images."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..model.artifacts import write_atomically
from ..model.detector import DEFAULT_SCORE_THRESHOLD, CircleDetector
from ..model.imageio import to_gray_float
from .baselines import BASELINES
from .coins_truth import read_truth
from .independent import INDEPENDENT_SCENES, INDEPENDENT_SEED, NEGATIVE_SCENES, Scene
from .independent import make_scenes as make_independent_scenes
from .metrics import Report, evaluate_predictions
from .negatives import negative_scenes, photographs
from .synthetic import HARD, make_scenes

HARD_SEED = 424_242
HARD_SCENES = 200
MODEL = "circle-detector"
#: The model card's hand-written section (provenance, limits), which `evaluate` keeps.
NOTES_HEADING = "## Provenance and limits"


@dataclass(frozen=True)
class Dataset:
    name: str
    images: list[np.ndarray]
    truths: list[np.ndarray]
    difficult: list[np.ndarray]
    #: The independent generator's per-circle and per-scene labels, for the breakdowns.
    scenes: list[Scene] | None = None
    #: A name per image where the images are of different sources (the negative photographs).
    image_names: list[str] | None = None

    @property
    def has_circles(self) -> bool:
        return any(len(t) for t in self.truths)


def hard_synthetic(count: int = HARD_SCENES, seed: int = HARD_SEED) -> Dataset:
    """The held-out set: another seed and the harder `HARD` settings than training."""
    scenes = make_scenes(seed, count, HARD, progress="hard scenes")
    return Dataset(
        "hard-synthetic",
        [s.image for s in scenes],
        [s.circles for s in scenes],
        [s.difficult for s in scenes],
    )


def _from_scenes(name: str, scenes: list[Scene]) -> Dataset:
    return Dataset(
        name,
        [s.image for s in scenes],
        [s.circles for s in scenes],
        [s.difficult for s in scenes],
        scenes=scenes,
    )


def independent(
    count: int = INDEPENDENT_SCENES, seed: int = INDEPENDENT_SEED, workers: int | None = None
) -> Dataset:
    """Scenes of the evaluation-only generator (`training.independent`), never trained on."""
    scenes = make_independent_scenes(count, seed, workers=workers, progress="independent scenes")
    return _from_scenes("independent", scenes)


def negatives(count: int = NEGATIVE_SCENES, workers: int | None = None) -> list[Dataset]:
    """Circle-free generated scenes, and circle-free real photographs: two sources."""
    photos = photographs()
    empty = np.zeros((0, 3))
    return [
        _from_scenes("negative-scenes", negative_scenes(count, workers=workers)),
        Dataset(
            "negative-photos",
            list(photos.values()),
            [empty] * len(photos),
            [np.zeros(0, dtype=bool)] * len(photos),
            image_names=list(photos),
        ),
    ]


def coins_truth() -> np.ndarray:
    return read_truth()


def coins() -> Dataset:
    """skimage's photograph of 24 coins with the project's committed ground truth."""
    try:
        import skimage.data
    except ImportError as exc:  # a dev dependency
        raise SystemExit("the coins photo needs scikit-image: pip install -e '.[dev]'") from exc
    truth = coins_truth()
    return Dataset("coins", [skimage.data.coins()], [truth], [np.zeros(len(truth), dtype=bool)])


def model_method(detector: CircleDetector) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: detector.detect_arrays([image], score_threshold=0.0)[0]


def run_method(
    method: Callable[[np.ndarray], np.ndarray], data: Dataset, label: str
) -> tuple[list[np.ndarray], float]:
    """Predictions for every image and the median milliseconds per image."""
    predictions, times = [], []
    for image in tqdm(data.images, desc=f"{label} on {data.name}", unit="img", leave=False):
        start = time.perf_counter()
        predictions.append(method(image))
        times.append(time.perf_counter() - start)
    return predictions, 1000.0 * float(np.median(times))


def _on_grey(method: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A Hough baseline on the grey 8-bit image the detector would see (HoughCircles needs it)."""
    return lambda image: method(np.round(to_gray_float(image) * 255).astype(np.uint8))


def evaluate_all(
    detector: CircleDetector, datasets: list[Dataset], baselines: bool = True
) -> tuple[dict[str, dict[str, Report]], dict, dict[str, dict[str, list[np.ndarray]]]]:
    """Reports, PR curves and raw predictions per data set and method (Hough too if asked)."""
    methods = {MODEL: model_method(detector)}
    if baselines:
        methods |= {name: _on_grey(method) for name, method in BASELINES.items()}
    reports: dict[str, dict[str, Report]] = {}
    curves: dict = {}
    predictions: dict[str, dict[str, list[np.ndarray]]] = {}
    for data in datasets:
        reports[data.name], curves[data.name], predictions[data.name] = {}, {}, {}
        for name, method in methods.items():
            preds, ms = run_method(method, data, name)
            threshold = DEFAULT_SCORE_THRESHOLD if name == MODEL else 0.0
            report, pr = evaluate_predictions(preds, data.truths, data.difficult, threshold, ms)
            reports[data.name][name] = report
            curves[data.name][name] = pr
            predictions[data.name][name] = preds
    return reports, curves, predictions


def format_table(reports: dict[str, dict[str, Report]]) -> str:
    header = (
        f"{'data set':<15} {'method':<19} {'AP50':>6} {'AP75':>6} {'AP':>6} "
        f"{'P':>6} {'R':>6} {'F1':>6} "
        f"{'TP':>5} {'FP':>5} {'GT':>5} {'c.err':>6} {'r.err':>6} {'ms/img':>7}"
    )
    lines = [header, "-" * len(header)]
    for data_name, by_method in reports.items():
        for name, r in by_method.items():
            lines.append(
                f"{data_name:<15} {name:<19} {r.ap50:6.3f} {r.ap75:6.3f} {r.ap:6.3f} "
                f"{r.precision:6.3f} "
                f"{r.recall:6.3f} {r.f1:6.3f} {r.true_positives:5d} {r.false_positives:5d} "
                f"{r.n_truth:5d} {r.centre_error:6.2f} {r.radius_error:6.2f} {r.ms_per_image:7.1f}"
            )
    return "\n".join(lines)


def reports_as_json(reports: dict[str, dict[str, Report]]) -> dict:
    return {d: {m: asdict(r) for m, r in by.items()} for d, by in reports.items()}


def save_pr_plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 5), squeeze=False)
    for ax, (data_name, by_method) in zip(axes[0], curves.items(), strict=True):
        for name, pr in by_method.items():
            recall, precision = pr["AP50"]
            ax.plot(recall, precision, label=name)
        ax.set(title=f"{data_name} (IoU 0.5)", xlabel="recall", ylabel="precision")
        ax.set(xlim=(0, 1.01), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_overlay(image: np.ndarray, truth: np.ndarray, found: np.ndarray, path: Path) -> None:
    """Truth in green, detections at the operating point in red, at 3x for inspection."""
    import cv2

    scale = 3
    vis = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    vis = cv2.resize(vis, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)

    def draw(cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
        centre = (round(((cx + 0.5) * scale - 0.5) * 16), round(((cy + 0.5) * scale - 0.5) * 16))
        cv2.circle(vis, centre, round(r * scale * 16), colour, 1, cv2.LINE_AA, 4)

    for cx, cy, r in truth:
        draw(cx, cy, r, (0, 200, 0))
    for cx, cy, r, _ in found:
        draw(cx, cy, r, (0, 0, 255))
    cv2.imwrite(str(path), vis)


def render_model_card(
    detector: CircleDetector,
    reports: dict[str, dict[str, Report]],
    analysis: dict[str, dict] | None = None,
    plots: str | None = None,
) -> str:
    """The model card: what was trained how, and what it scores against the baselines.

    With `analysis` (from `training.analysis.analyse`) it also lists the breakdowns; `plots`
    is the folder of the evaluation's figures, relative to the card."""
    meta = detector.info.metadata
    training = meta.get("training", {})
    seconds = meta.get("seconds", {})
    calibration = meta.get("calibration", {})
    params = detector.info.parameters
    lines = [
        f"# Model card: {detector.info.name}, version {detector.info.version}",
        "",
        "A CenterNet-style fully convolutional circle detector (centre heatmap, sub-cell offset",
        "and log radius at stride 4, max-pool NMS), then a sub-pixel least-squares fit of each",
        "circle to its edge, and a calibrated score from the heat and the edge's shape (how",
        "round, how strong, how complete). Input: any image, converted to grey.",
        "",
        "## Training",
        "",
        f"- parameters: {params:,}; config: `{json.dumps(detector.info.config)}`",
        f"- set-up: `{json.dumps(training)}`",
        f"- data: {training.get('scenes', '?')} synthetic 256x256 scenes"
        f" (seed {training.get('seed')}),"
        " discs, rings (thin ones too), shaded and textured discs of radius 3-120 px with drop"
        " shadows and highlights, occluded and cut by the border, with distractors (ellipses,"
        " rectangles, polygons, lines, arcs, irregular blobs) on flat, gradient, textured,"
        " periodic (checkerboard, stripes, grid, tiles) and blob-field backgrounds; noise,"
        " blur, JPEG (heavy too), uneven light, contrast and polarity changes; flips and"
        " transposes (`training/synthetic.py`, `TRAIN`)",
        f"- wall time (s): `{json.dumps(seconds)}`",
        f"- score: fitted by log loss to {calibration.get('candidates', '?')} candidates"
        f" ({calibration.get('positives', '?')} true) on {training.get('calibration_scenes', '?')}"
        f" fresh scenes; expected calibration error {calibration.get('ece') or float('nan'):.4f};"
        " score 0.5 is the operating point",
        "",
        "## Evaluation (`circle-detector evaluate`)",
        "",
        "Set sizes are the defaults (`--quick` runs a few scenes of each).",
        "Hard synthetic: 200 held-out 384x384 scenes (seed 424242) with more circles, more",
        "clutter, more noise, blur and JPEG than training. Independent: 300 scenes of the",
        "evaluation-only generator (`training/independent.py`, seed 7130501; no code shared",
        "with training: its own rendering, fills, backgrounds and degradations, 320-512 px,",
        "colour and grey). Negatives: 100 circle-free generated scenes and six circle-free",
        "skimage photographs. Coins: `skimage.data.coins()` with the committed ground truth",
        "(`training/data/coins_truth.json`). P/R/F1 and errors at the operating point 0.5",
        "(IoU 0.5); AP is COCO's mean over IoU 0.50-0.95; Hough at its own fixed parameters",
        "(when run). Errors are mean px over true positives. AP is undefined (nan) on the",
        "negatives: every detection there is a false circle.",
        "",
        "```",
        format_table(reports),
        "```",
        "",
    ]
    if plots is not None:
        lines += [
            f"Plots: [precision-recall]({plots}/pr_curves.png), [reliability]({plots}/"
            f"reliability.png), [coins overlay]({plots}/coins_overlay.png) (green truth, red"
            f" detections at 0.5); every figure in [metrics.json]({plots}/metrics.json).",
            "",
        ]
    if analysis:
        from .analysis import format_analysis

        lines += [
            "Breakdowns at the operating point (recall per circle category; recall,",
            "precision, false circles per image and AP50 per scene category; ECE over",
            "detections in 10 equal-width score bins, VOC matching at IoU 0.5):",
            "",
            "```",
            format_analysis(analysis, DEFAULT_SCORE_THRESHOLD).strip("\n"),
            "```",
            "",
        ]
    return "\n".join(lines)


def hand_written_notes(card_path: Path, version: str) -> str:
    """The card's hand-written last section (`NOTES_HEADING` to the end), kept when the same
    model version is evaluated again; a new version starts without the old version's notes."""
    try:
        old = card_path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""
    head, heading, notes = old.partition(f"\n{NOTES_HEADING}\n")
    if not heading or not head.split("\n", 1)[0].endswith(f", version {version}"):
        return ""
    return heading + notes


def evaluate_and_write(
    detector: CircleDetector,
    output_dir: Path,
    card_path: Path | None = None,
    *,
    hard_count: int = HARD_SCENES,
    hard_seed: int = HARD_SEED,
    independent_count: int = INDEPENDENT_SCENES,
    independent_seed: int = INDEPENDENT_SEED,
    negative_count: int = NEGATIVE_SCENES,
    baselines: bool = True,
    workers: int | None = None,
) -> dict:
    """Evaluate on all four sets and write metrics.json, pr_curves.png, reliability.png and
    coins_overlay.png to `output_dir` (and the model card to `card_path` if given).

    The sets: hard synthetic, independent, negatives (generated scenes and photographs) and
    coins. Prints the tables; returns what metrics.json holds."""
    from .analysis import RELIABILITY_SETS, analyse, format_analysis
    from .calibration import save_reliability_plot

    datasets = [
        hard_synthetic(hard_count, hard_seed),
        independent(independent_count, independent_seed, workers),
        *negatives(negative_count, workers),
        coins(),
    ]
    datasets = [d for d in datasets if d.images]
    reports, curves, predictions = evaluate_all(detector, datasets, baselines)
    analysis, calibrations = analyse(datasets, predictions, DEFAULT_SCORE_THRESHOLD)
    print(format_table(reports))
    print(format_analysis(analysis, DEFAULT_SCORE_THRESHOLD))
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics = json_safe(reports_as_json(reports) | {"analysis": analysis})
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    positive = {d.name: curves[d.name] for d in datasets if d.has_circles}
    save_pr_plot(positive, output_dir / "pr_curves.png")
    drawn = {name: calibrations[name] for name in RELIABILITY_SETS if name in calibrations}
    save_reliability_plot(drawn, output_dir / "reliability.png")
    coin_set = datasets[-1]
    found = predictions["coins"][MODEL][0]
    found = found[found[:, 3] >= DEFAULT_SCORE_THRESHOLD]
    save_overlay(coin_set.images[0], coin_set.truths[0], found, output_dir / "coins_overlay.png")
    print(f"\nwrote {output_dir}/metrics.json, pr_curves.png, reliability.png, coins_overlay.png")
    if card_path is not None:
        plots = Path(os.path.relpath(output_dir, card_path.parent)).as_posix()
        card = render_model_card(detector, reports, analysis, plots)
        card += hand_written_notes(card_path, detector.info.version)
        write_atomically(card_path, card.encode())
        print(f"wrote {card_path}")
    return metrics


def json_safe(value: object) -> object:
    """NaN (an undefined figure, such as AP on a set without circles) as JSON null."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
