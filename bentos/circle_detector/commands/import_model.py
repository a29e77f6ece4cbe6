"""`circle-detector import-model`: put the committed weights into the BentoML model store.

The store tag is `circle-detector:<checkpoint version>-<first 12 hex of the file's sha256>`, so
importing the same file twice does nothing and new weights get a new tag (and `:latest`).
The store lives in `$BENTOML_HOME` (the Makefile sets `.bentoml` in the checkout).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

HELP = "Import the committed weights into the BentoML model store (idempotent)."
WEIGHTS_FILE = "circle_detector.pt"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", type=Path, default=None, help="weights file (default: the committed one)"
    )


def store_version(model_version: str, weights: Path) -> str:
    """A valid BentoML tag version made of the checkpoint's version and the file's digest."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    clean = re.sub(r"[^a-z0-9._-]+", "-", model_version.lower()).strip("-._") or "0"
    return f"{clean}-{digest}"


def import_model(weights: Path | None = None) -> tuple[str, bool]:
    """Import the weights; returns the tag and whether it was newly created."""
    import bentoml
    from bentoml.exceptions import NotFound

    from ..model.detector import MODEL_NAME, WEIGHTS_PATH, CircleDetector

    path = Path(weights or WEIGHTS_PATH)
    try:
        detector = CircleDetector.load(path)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise ValueError(f"{path} is not a circle-detector checkpoint: {exc}") from exc
    tag = f"{MODEL_NAME}:{store_version(detector.info.version, path)}"
    try:
        bentoml.models.get(tag)
        return tag, False
    except NotFound:
        pass
    metadata = {
        "model_version": detector.info.version,
        "config": detector.info.config,
        **{k: v for k, v in detector.info.metadata.items() if isinstance(v, str | int | float)},
    }
    with bentoml.models.create(
        tag, module="bentos.circle_detector", labels={"framework": "pytorch"}, metadata=metadata
    ) as model:
        shutil.copyfile(path, model.path_of(WEIGHTS_FILE))
    return tag, True


def run(args: argparse.Namespace) -> int:
    if args.weights is not None and not args.weights.is_file():
        print(f"error: cannot read weights file {args.weights}", file=sys.stderr)
        return 2
    try:
        tag, created = import_model(args.weights)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'imported' if created else 'already in the store:'} {tag}")
    return 0
