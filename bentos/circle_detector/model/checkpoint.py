"""The torch checkpoint (`circle_detector.pt`): the network's weights with the model's info and
score, as training writes it. Training, evaluation and export read it; serving does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .artifacts import ModelFileError, ModelInfo
from .network import CircleNet
from .scoring import Scorer


def to_checkpoint(net: torch.nn.Module, info: ModelInfo, scorer: Scorer) -> dict[str, Any]:
    return {
        "name": info.name,
        "version": info.version,
        "config": info.config,
        "metadata": info.metadata,
        "scorer": {k: torch.from_numpy(v) for k, v in scorer.state_dict().items()},
        "state_dict": {k: v.contiguous() for k, v in net.state_dict().items()},
    }


def from_checkpoint(checkpoint: dict[str, Any]) -> tuple[CircleNet, ModelInfo, Scorer]:
    config = dict(checkpoint.get("config", {}))
    net = CircleNet(**config)
    net.load_state_dict(checkpoint["state_dict"])
    info = ModelInfo(
        name=checkpoint.get("name", ModelInfo.name),
        version=str(checkpoint.get("version", "0")),
        config=config,
        metadata=dict(checkpoint.get("metadata", {})),
        parameters=sum(p.numel() for p in net.parameters()),
    )
    scorer = Scorer.from_state_dict(checkpoint["scorer"]) if "scorer" in checkpoint else Scorer()
    return net.eval(), info, scorer


def load_checkpoint(path: str | Path) -> tuple[CircleNet, ModelInfo, Scorer]:
    """Read a checkpoint; any unreadable file is a `ModelFileError` naming it."""
    try:
        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
        return from_checkpoint(checkpoint)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelFileError(f"{path} is not a circle-detector checkpoint: {exc}") from exc


def save_checkpoint(
    path: str | Path, net: torch.nn.Module, info: ModelInfo, scorer: Scorer
) -> None:
    torch.save(to_checkpoint(net, info, scorer), Path(path))
