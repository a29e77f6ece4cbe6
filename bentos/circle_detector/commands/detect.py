"""`circle-detector detect`: run the model in-process on image files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..model.runtimes import RUNTIMES

HELP = "Detect circles in image files with the committed model, in-process."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--score-threshold",
        type=probability,
        default=None,
        help="minimum calibrated score (default 0.5, the operating point)",
    )
    parser.add_argument(
        "--max-detections", type=positive_int, default=100, help="per image (default 100)"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="model folder or checkpoint file (default: the committed model)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="onnx",
        help="network runtime: ONNX Runtime or torch (default onnx)",
    )


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    from ..model.artifacts import ModelFileError
    from ..model.detector import DEFAULT_SCORE_THRESHOLD, CircleDetector
    from ..model.imageio import ImageDecodeError, decode_image

    threshold = DEFAULT_SCORE_THRESHOLD if args.score_threshold is None else args.score_threshold
    try:
        detector = CircleDetector.load(args.weights, args.runtime)
    except ModelFileError as exc:
        print(f"error: cannot load the model: {exc}", file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {}
    failed = 0
    for path in args.images:
        try:
            image = decode_image(path.read_bytes())
        except (OSError, ImageDecodeError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        circles = detector.detect([image], threshold, args.max_detections)[0]
        results[str(path)] = [c.as_dict() for c in circles]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 1 if failed else 0


def print_table(results: dict[str, list[dict]]) -> None:
    for path, circles in results.items():
        print(f"{path}: {len(circles)} circle(s)")
        if circles:
            print(f"  {'cx':>9} {'cy':>9} {'radius':>8} {'score':>6}")
        for c in circles:
            cx, cy = c["center"]
            print(f"  {cx:9.2f} {cy:9.2f} {c['radius']:8.2f} {c['score']:6.3f}")
