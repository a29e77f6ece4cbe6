"""Finding a model in BentoML's model store without importing BentoML.

The store keeps `$BENTOML_HOME/models/<name>/<version>/` folders and a `latest` file naming the
newest version. Reading that layout directly keeps BentoML (and its import time) out of the
single-process server; `bentoml serve` resolves the same tag through BentoML itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from .model.artifacts import ModelFileError, model_versions


def bentoml_home() -> Path:
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser()


def model_folder(tag: str, home: Path | None = None) -> Path:
    """The folder of `name:version` (or `name`, `name:latest`) in the store: a containerized
    Bento's own (`$BENTO_PATH/models`) when it has the model, else `$BENTOML_HOME`'s."""
    bento = os.environ.get("BENTO_PATH")
    if home is None and bento and (Path(bento) / "models" / tag.partition(":")[0]).is_dir():
        home = Path(bento)
    home = home or bentoml_home()
    name, _, version = tag.partition(":")
    models = home / "models" / name
    if version in ("", "latest"):
        try:
            version = (models / "latest").read_text().strip()
        except OSError:
            version = ""
    folder = models / version if version else models / "latest"
    if not version or not folder.is_dir():
        raise ModelFileError(
            f"model {tag} is not in the BentoML model store of BENTOML_HOME={home}; "
            "import the committed model with `circle-detector import-model` (`make model`)"
        )
    return folder


def served_folder(model_dir: str | Path | None, tag: str) -> Path:
    """The model folder to serve: the newest version in `model_dir` when one is given (KServe's
    `--model_dir`), else `tag` from the model store."""
    if model_dir:
        return model_versions(Path(model_dir))[-1]
    return model_folder(tag)


def served_directory(model_dir: str | Path | None, tag: str) -> Path:
    """The model directory to serve: `model_dir` when one is given (KServe's `--model_dir`:
    a model folder or one subfolder per version), else `tag`'s folder in the model store."""
    if model_dir:
        return Path(model_dir)
    return model_folder(tag)
