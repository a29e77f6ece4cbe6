"""The `circle-detector` command: one entry point, one module per sub-command.

Each command module defines `HELP`, `configure(parser)` and `run(args) -> int`, and keeps heavy
imports (torch, bentoml) inside `run` so that `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "detect": "bentos.circle_detector.commands.detect",
    "train": "bentos.circle_detector.training.train",
    "evaluate": "bentos.circle_detector.training.evaluate",
    "export": "bentos.circle_detector.commands.export",
    "import-model": "bentos.circle_detector.commands.import_model",
    "infer": "bentos.circle_detector.commands.infer",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="circle-detector",
        description="Train, evaluate, package and query the circle detector.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
