"""`circle-detector train`: train the detector from scratch on synthetic scenes, seeded.

Scenes are generated once up front (the generator is the slow part on two cores), then the
network sees them with flips and transposes for a fixed number of steps on a cosine schedule, so
a run is reproducible and its length does not depend on how busy the machine is. The run's state
is saved every few hundred steps and an interrupted run continues from it when started again with
the same settings. Afterwards the score is fitted on fresh scenes unlike training's defaults, and
the weights, the ONNX export, the training log and the evaluation are written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .trainer import TrainConfig

HELP = "Train the detector from scratch on synthetic data (about 80 minutes on 2 CPU cores)."
CHECKPOINTS = Path("artifacts/training")
QUICK_OUTPUT = Path("artifacts/quick/circle_detector.pt")
REPORT_DIR = Path("docs/model")


def configure(parser: argparse.ArgumentParser) -> None:
    from .trainer import QUICK, TrainConfig

    d = TrainConfig()
    parser.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps ({d.steps})")
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"scenes per step ({d.batch_size})"
    )
    parser.add_argument(
        "--scenes", type=int, default=d.scenes, help=f"synthetic training scenes ({d.scenes})"
    )
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate ({d.lr})")
    parser.add_argument("--width", type=int, default=d.width, help=f"network width ({d.width})")
    parser.add_argument("--seed", type=int, default=0, help="seed of scenes and init (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run ({QUICK.steps} steps on {QUICK.scenes} scenes, a few minutes), written"
        f" to {QUICK_OUTPUT.parent}/ unless --output; the committed weights are left alone",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="weights file to write (default: the package's committed weights)",
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help=f"where the resumable state goes (default {CHECKPOINTS}/<version>/); a run started"
        " again with the same settings continues from it",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="ignore a saved state and start from step 0"
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        help=f"where the training log, its plot and the evaluation go (default {REPORT_DIR}/ for"
        " the committed weights, else the weights' folder)",
    )
    parser.add_argument("--version", default=None, help=f"model version ({d.version})")
    parser.add_argument(
        "--skip-evaluation",
        action="store_true",
        help="do not evaluate and write the model card after training",
    )


def config_from(args: argparse.Namespace) -> TrainConfig:
    from dataclasses import replace

    from .trainer import QUICK, TrainConfig

    if args.quick:
        return replace(QUICK, seed=args.seed, threads=args.threads, device=args.device)
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        scenes=args.scenes,
        lr=args.lr,
        width=args.width,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        version=args.version or TrainConfig.version,
    )


def run(args: argparse.Namespace) -> int:
    from .resume import ResumeMismatch
    from .trainer import train_and_save

    if args.steps < 1 or args.batch_size < 1 or args.scenes < args.batch_size or args.lr <= 0:
        print(
            "error: --steps and --batch-size must be >= 1, --scenes >= --batch-size, --lr > 0",
            file=sys.stderr,
        )
        return 2
    config = config_from(args)
    output = args.output or (QUICK_OUTPUT if args.quick else None)
    report_dir = args.report_dir or (REPORT_DIR if output is None else Path(output).parent)
    checkpoint_dir = args.checkpoint_dir or CHECKPOINTS / config.version
    try:
        summary = train_and_save(config, output, checkpoint_dir, report_dir, args.fresh)
    except ResumeMismatch as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=_plain))
    from ..model.export import export_model

    weights = Path(summary["weights"])
    written = export_model(weights, weights.parent)
    print(f"exported {', '.join(str(p) for p in written)}")
    if not args.skip_evaluation:
        from ..model.detector import CircleDetector
        from .evaluate import QUICK as QUICK_SETS
        from .evaluation import evaluate_and_write

        detector = CircleDetector.load(weights.parent, threads=args.threads)
        sizes = ("hard_count", "independent_count", "negative_count")
        # The classical baselines are left to `circle-detector evaluate`: Hough takes seconds
        # per independent image, longer than the rest of the evaluation.
        evaluate_and_write(
            detector,
            report_dir,
            weights.with_name("MODEL_CARD.md"),
            baselines=False,
            **(dict(zip(sizes, QUICK_SETS, strict=True)) if args.quick else {}),
        )
    return 0


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
