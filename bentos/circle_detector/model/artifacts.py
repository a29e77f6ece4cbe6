"""The model folder: the files a trained detector is made of, and reading them without torch.

One folder per model version holds

- `circle_detector.pt`: the torch checkpoint (training's output; the torch runtime reads it),
- `circle_detector.onnx`: the network exported by `circle-detector export` (ONNX Runtime reads it),
- `circle_detector.json`: everything else serving needs: name, version, network config, the
  fitted score's parameters, provenance, and the digests tying the three files together.

The committed weights folder, a BentoML model-store entry and a KServe model directory's
version subfolders all have this layout.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .scoring import Scorer
from .spec import INPUT_NAME, OUTPUT_NAMES

MODEL_NAME = "circle-detector"
CHECKPOINT_FILE = "circle_detector.pt"
ONNX_FILE = "circle_detector.onnx"
METADATA_FILE = "circle_detector.json"
#: The committed model folder, shipped in the package.
MODEL_DIR = Path(__file__).parent / "weights"
WEIGHTS_PATH = MODEL_DIR / CHECKPOINT_FILE
#: Version of the metadata file's layout.
FORMAT = 1


class ModelFileError(ValueError):
    """A model folder or file is missing, unreadable or inconsistent."""


@dataclass
class ModelInfo:
    name: str = MODEL_NAME
    version: str = "0"
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    parameters: int = 0  # the network's, for the model card and the model configuration


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_atomically(path: Path, data: bytes) -> Path:
    """Write `path` whole or not at all: a temporary file beside it, then a rename. A process
    killed mid-export leaves whole files; the digests in the metadata catch a folder left
    with files of two exports."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_metadata(
    folder: Path, info: ModelInfo, scorer: Scorer, files: dict[str, dict[str, Any]]
) -> Path:
    """Write `circle_detector.json`; `files` describes the artefacts (name, digest, ...)."""
    doc = {
        "format": FORMAT,
        "name": info.name,
        "version": info.version,
        "config": info.config,
        "parameters": info.parameters,
        "inputs": [INPUT_NAME],
        "outputs": list(OUTPUT_NAMES),
        "scorer": {k: v.tolist() for k, v in scorer.state_dict().items()},
        "files": files,
        "metadata": info.metadata,
    }
    return write_atomically(
        Path(folder) / METADATA_FILE, (json.dumps(doc, indent=1, default=str) + "\n").encode()
    )


def read_metadata(folder: Path) -> tuple[ModelInfo, Scorer, dict[str, dict[str, Any]]]:
    """The model's info, score and file table from a model folder (no torch needed)."""
    path = Path(folder) / METADATA_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"cannot read model metadata {path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not circle-detector metadata of format {FORMAT}")
    try:
        info = ModelInfo(
            name=str(doc["name"]),
            version=str(doc["version"]),
            config=dict(doc.get("config", {})),
            metadata=dict(doc.get("metadata", {})),
            parameters=int(doc.get("parameters", 0)),
        )
        scorer = Scorer.from_state_dict(doc["scorer"])
        files = dict(doc["files"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} is incomplete: {exc!r}") from exc
    return info, scorer, files


def checked_file(folder: Path, files: dict[str, dict[str, Any]], kind: str) -> Path:
    """The folder's `kind` file (`onnx` or `checkpoint`), checked against the digest its
    metadata (`files`) recorded."""
    path = Path(folder) / (ONNX_FILE if kind == "onnx" else CHECKPOINT_FILE)
    if not path.is_file():
        raise ModelFileError(f"{path} is missing; run `circle-detector export`")
    expected = files.get(kind, {}).get("sha256")
    if expected and sha256(path) != expected:
        raise ModelFileError(
            f"{path} does not match the digest in {METADATA_FILE}; run `circle-detector export`"
        )
    return path


def _version_key(folder: Path) -> tuple[int, int, str]:
    """Numeric versions in numeric order, after any other name (so `10` is newer than `9`)."""
    name = folder.name
    return (1, int(name), name) if name.isdigit() else (0, 0, name)


def model_versions(directory: Path) -> list[Path]:
    """The model folders a model directory holds, oldest first: the directory itself when it
    is one (as `circle-detector export` writes it), else its subfolders that are (one per
    version, as `export --repository` writes, or as KServe's storage initializer unpacks an
    archive). Reads only: the directory may be read-only (KServe mounts `/mnt/models` so)."""
    if (directory / METADATA_FILE).is_file():
        return [directory]
    if not directory.is_dir():
        raise ModelFileError(f"model directory {directory} does not exist or is not a folder")
    versions = sorted(
        (sub for sub in directory.iterdir() if (sub / METADATA_FILE).is_file()), key=_version_key
    )
    if not versions:
        raise ModelFileError(
            f"model directory {directory} holds no model: expected {METADATA_FILE} in it, or in "
            "one subfolder per version (`circle-detector export --output` or `--repository`)"
        )
    return versions
