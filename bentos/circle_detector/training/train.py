"""`circle-detector train`: train the detector from scratch on synthetic scenes, seeded.

Scenes are generated once up front (the generator is the slow part on two cores), then the
network sees them with flips and transposes for a fixed number of steps on a cosine schedule, so
a run is reproducible and its length does not depend on how busy the machine is. Afterwards the
score is fitted on fresh scenes and the weights and a model card are written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HELP = "Train the detector from scratch on synthetic data (about 23 minutes on 2 CPU cores)."


def configure(parser: argparse.ArgumentParser) -> None:
    from .trainer import TrainConfig

    d = TrainConfig()
    parser.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps ({d.steps})")
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"scenes per step ({d.batch_size})"
    )
    parser.add_argument(
        "--scenes", type=int, default=d.scenes, help=f"synthetic training scenes ({d.scenes})"
    )
    parser.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate ({d.lr})")
    parser.add_argument("--seed", type=int, default=0, help="seed of scenes and init (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="weights file to write (default: the package's committed weights)",
    )
    parser.add_argument("--version", default=d.version, help=f"model version ({d.version})")
    parser.add_argument(
        "--skip-evaluation",
        action="store_true",
        help="do not evaluate and write the model card after training",
    )


def run(args: argparse.Namespace) -> int:
    from .trainer import TrainConfig, train_and_save

    if args.steps < 1 or args.batch_size < 1 or args.scenes < args.batch_size or args.lr <= 0:
        print(
            "error: --steps and --batch-size must be >= 1, --scenes >= --batch-size, --lr > 0",
            file=sys.stderr,
        )
        return 2
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        scenes=args.scenes,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        version=args.version,
    )
    summary = train_and_save(config, args.output)
    print(json.dumps(summary, indent=2, default=_plain))
    from ..model.export import export_model

    weights = Path(summary["weights"])
    written = export_model(weights, weights.parent)
    print(f"exported {', '.join(str(p) for p in written)}")
    if not args.skip_evaluation:
        from ..model.detector import CircleDetector
        from .evaluation import coins, evaluate_all, hard_synthetic, render_model_card

        detector = CircleDetector.load(weights.parent, threads=args.threads)
        reports, _, _ = evaluate_all(detector, [hard_synthetic(), coins()])
        card = weights.with_name("MODEL_CARD.md")
        card.write_text(render_model_card(detector, reports))
        print(f"wrote {card}")
    return 0


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
