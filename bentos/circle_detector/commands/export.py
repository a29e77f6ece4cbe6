"""`circle-detector export`: write a checkpoint's model folder for serving (ONNX + metadata).

By default the committed checkpoint is exported next to itself, which is how the committed
`circle_detector.onnx` and `circle_detector.json` were made. `--repository DIR` writes the folder
as `DIR/<model version>/`, the layout of a model repository with one subfolder per version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Export a checkpoint as ONNX with its score and metadata (the folder the Bento serves)."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", type=Path, default=None, help="checkpoint file (default: the committed one)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output", type=Path, default=None, help="model folder to write (default: beside it)"
    )
    where.add_argument(
        "--repository",
        type=Path,
        default=None,
        help="write into REPOSITORY/<model version>/ instead",
    )


def run(args: argparse.Namespace) -> int:
    from ..model.artifacts import WEIGHTS_PATH, ModelFileError
    from ..model.checkpoint import load_checkpoint
    from ..model.export import write_model_folder

    weights = Path(args.weights or WEIGHTS_PATH)
    if not weights.is_file():
        print(f"error: cannot read checkpoint {weights}", file=sys.stderr)
        return 2
    try:
        net, info, scorer = load_checkpoint(weights)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.repository is not None:
        folder = args.repository / info.version
    else:
        folder = args.output or weights.parent
    try:
        written = write_model_folder(folder, net, info, scorer, weights)
    except OSError as exc:
        print(f"error: cannot write {folder}: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0
