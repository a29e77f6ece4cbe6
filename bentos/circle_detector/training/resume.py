"""The training run's resumable state: everything needed to continue an interrupted run exactly.

Scenes are not saved: they regenerate from the seed. What is saved every few hundred steps is
the network, its moving average, the optimiser, the step, both random generators and the log,
written to a temporary file and renamed so that a kill mid-write leaves the previous state whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "state.pt"

#: Settings that do not change what is computed, so a run may resume under other values.
NOT_IDENTITY = ("threads", "device", "checkpoint_every")


class ResumeMismatch(ValueError):
    """The saved state belongs to a run with other settings."""


def identity(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in NOT_IDENTITY}


def save_state(
    directory: Path,
    config: dict[str, Any],
    step: int,
    net: torch.nn.Module,
    ema: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    rng: np.random.Generator,
    log: list[dict[str, float]],
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    partial = path.with_suffix(".partial")
    torch.save(
        {
            "config": identity(config),
            "step": step,
            "net": net.state_dict(),
            "ema": ema.state_dict(),
            "optimiser": optimiser.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "log": log,
        },
        partial,
    )
    os.replace(partial, path)
    return path


def load_state(directory: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of this run, or None when there is none; other settings raise."""
    path = directory / STATE_FILE
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["config"] != identity(config):
        changed = sorted(
            k for k in identity(config) if state["config"].get(k) != identity(config)[k]
        )
        raise ResumeMismatch(
            f"{path} belongs to a run with other settings ({', '.join(changed)});"
            " pass --fresh to start over or --checkpoint-dir to keep both"
        )
    return state


def restore(
    state: dict[str, Any],
    net: torch.nn.Module,
    ema: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> tuple[int, list[dict[str, float]]]:
    """Load a saved state into the run's objects; returns the next step and the log so far."""
    net.load_state_dict(state["net"])
    ema.load_state_dict(state["ema"])
    optimiser.load_state_dict(state["optimiser"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["log"])
