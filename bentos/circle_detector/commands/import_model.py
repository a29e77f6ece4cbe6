"""`circle-detector import-model`: put a model folder into the BentoML model store.

The entry holds the model folder's three files (ONNX network, metadata, torch checkpoint), so the
Bento serves either runtime from it. A checkpoint file given instead of a folder is exported
first (that needs torch; the committed folder does not). The store tag is
`circle-detector:<model version>-<first 12 hex of the checkpoint's sha256>`, so importing the same
model twice does nothing and new weights get a new tag (and `:latest`). The store lives in
`$BENTOML_HOME` (the Makefile sets `.bentoml` in the checkout).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from ..model.artifacts import CHECKPOINT_FILE, METADATA_FILE, ONNX_FILE, ModelFileError

HELP = "Import the committed model (or another) into the BentoML model store (idempotent)."
MODEL_FILES = (ONNX_FILE, METADATA_FILE, CHECKPOINT_FILE)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="model folder, or a checkpoint file to export first (default: the committed model)",
    )


def store_version(model_version: str, checkpoint_sha256: str) -> str:
    """A valid BentoML tag version made of the model's version and the checkpoint's digest."""
    clean = re.sub(r"[^a-z0-9._-]+", "-", model_version.lower()).strip("-._") or "0"
    return f"{clean}-{checkpoint_sha256[:12]}"


def import_model(weights: Path | None = None) -> tuple[str, bool]:
    """Import a model; returns the tag and whether it was newly created."""
    from ..model.artifacts import MODEL_DIR

    path = Path(weights or MODEL_DIR)
    if path.is_dir():
        return _import_folder(path)
    from ..model.export import export_model

    with tempfile.TemporaryDirectory(prefix="circle-detector-export-") as folder:
        export_model(path, Path(folder))
        return _import_folder(Path(folder))


def _import_folder(folder: Path) -> tuple[str, bool]:
    import bentoml
    from bentoml.exceptions import NotFound

    from ..model.artifacts import MODEL_NAME, checked_file, read_metadata

    info, _, files = read_metadata(folder)
    for kind in ("onnx", "checkpoint"):
        checked_file(folder, files, kind)  # present and matching its digest
    tag = f"{MODEL_NAME}:{store_version(info.version, files['checkpoint']['sha256'])}"
    try:
        bentoml.models.get(tag)
        return tag, False
    except NotFound:
        pass
    metadata = {
        "model_version": info.version,
        "config": info.config,
        "parameters": info.parameters,
        "onnx_sha256": files["onnx"]["sha256"],
    }
    with bentoml.models.create(
        tag,
        module="bentos.circle_detector",
        labels={"framework": "onnx", "trained_with": "pytorch"},
        metadata=metadata,
    ) as model:
        for name in MODEL_FILES:
            shutil.copyfile(folder / name, model.path_of(name))
    return tag, True


def run(args: argparse.Namespace) -> int:
    if args.weights is not None and not args.weights.exists():
        print(f"error: cannot read weights {args.weights}", file=sys.stderr)
        return 2
    try:
        tag, created = import_model(args.weights)
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'imported' if created else 'already in the store:'} {tag}")
    return 0
