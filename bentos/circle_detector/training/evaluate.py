"""`circle-detector evaluate`: the detector on held-out, independent and circle-free images.

Sets: the training generator's hard held-out scenes, the independent evaluation generator's
scenes (`training.independent`, no code shared with training), circle-free scenes and
photographs (`training.negatives`), and skimage's coins photo. OpenCV's Hough transform runs
beside the model unless `--no-baselines`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..model.runtimes import RUNTIMES

HELP = (
    "Evaluate the model (and both Hough variants) on the hard synthetic set, the independent"
    " set, circle-free negatives and the coins photo, with breakdowns and calibration."
)

#: --quick: scenes per generated set (hard, independent, negative), enough for a smoke run.
QUICK = (6, 18, 9)


def configure(parser: argparse.ArgumentParser) -> None:
    from .independent import INDEPENDENT_SCENES, INDEPENDENT_SEED, NEGATIVE_SCENES

    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="model folder or checkpoint file (default: the committed model)",
    )
    parser.add_argument(
        "--scenes", type=int, default=200, help="hard synthetic scenes (default 200)"
    )
    parser.add_argument("--seed", type=int, default=424_242, help="hard set seed (default 424242)")
    parser.add_argument(
        "--independent-scenes",
        type=int,
        default=INDEPENDENT_SCENES,
        help=f"independent-generator scenes (default {INDEPENDENT_SCENES})",
    )
    parser.add_argument(
        "--independent-seed",
        type=int,
        default=INDEPENDENT_SEED,
        help=f"independent set seed (default {INDEPENDENT_SEED})",
    )
    parser.add_argument(
        "--negative-scenes",
        type=int,
        default=NEGATIVE_SCENES,
        help=f"circle-free generated scenes (default {NEGATIVE_SCENES}); 0 leaves them out",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK[0]} hard, {QUICK[1]} independent and {QUICK[2]} negative scenes",
    )
    parser.add_argument(
        "--baselines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run OpenCV's two Hough variants (default on; --no-baselines skips them)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="processes generating the independent and negative scenes (default 2)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("artifacts/evaluation"),
        help="where metrics.json, pr_curves.png, reliability.png and coins_overlay.png go",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="network intra-op threads (default 2)"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnx",
        help="network runtime: the exported ONNX model or the torch checkpoint (default onnx)",
    )
    parser.add_argument(
        "--model-card",
        type=Path,
        default=None,
        help="also write the model card (Markdown) with these results to this path",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from ..model.artifacts import ModelFileError
    from ..model.detector import CircleDetector
    from .evaluation import evaluate_and_write

    hard_n, independent_n, negative_n = (
        QUICK if args.quick else (args.scenes, args.independent_scenes, args.negative_scenes)
    )
    if hard_n < 1 or independent_n < 1 or negative_n < 0 or args.workers < 1:
        print(
            "error: --scenes, --independent-scenes and --workers must be at least 1,"
            " --negative-scenes at least 0",
            file=sys.stderr,
        )
        return 2
    try:
        detector = CircleDetector.load(args.weights, args.runtime, args.threads)
    except ModelFileError as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    evaluate_and_write(
        detector,
        args.output_dir,
        args.model_card,
        hard_count=hard_n,
        hard_seed=args.seed,
        independent_count=independent_n,
        independent_seed=args.independent_seed,
        negative_count=negative_n,
        baselines=args.baselines,
        workers=args.workers,
    )
    return 0
