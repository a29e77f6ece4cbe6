"""`circle-detector evaluate`: the detector against OpenCV's Hough transform, side by side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..model.runtimes import RUNTIMES

HELP = "Evaluate the model and both Hough variants on the hard synthetic set and the coins photo."


def configure(parser: argparse.ArgumentParser) -> None:
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
        "--output-dir",
        type=Path,
        default=Path("artifacts/evaluation"),
        help="where metrics.json, pr_curves.png and coins_overlay.png go",
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
    from ..model.detector import DEFAULT_SCORE_THRESHOLD, CircleDetector
    from .evaluation import (
        MODEL,
        coins,
        evaluate_all,
        format_table,
        hard_synthetic,
        render_model_card,
        reports_as_json,
        save_overlay,
        save_pr_plot,
    )

    if args.scenes < 1:
        print("error: --scenes must be at least 1", file=sys.stderr)
        return 2
    try:
        detector = CircleDetector.load(args.weights, args.runtime, args.threads)
    except ModelFileError as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    datasets = [hard_synthetic(args.scenes, args.seed), coins()]
    reports, curves, predictions = evaluate_all(detector, datasets)
    print(format_table(reports))
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(reports_as_json(reports), indent=2) + "\n")
    save_pr_plot(curves, out / "pr_curves.png")
    coin_set = datasets[-1]
    found = predictions["coins"][MODEL][0]
    found = found[found[:, 3] >= DEFAULT_SCORE_THRESHOLD]
    save_overlay(coin_set.images[0], coin_set.truths[0], found, out / "coins_overlay.png")
    print(f"wrote {out}/metrics.json, pr_curves.png, coins_overlay.png")
    if args.model_card:
        args.model_card.write_text(render_model_card(detector, reports))
        print(f"wrote {args.model_card}")
    return 0
