"""Export a checkpoint as a model folder for serving: the network as ONNX, the rest as JSON.

The ONNX graph has dynamic batch, height and width axes, so one file serves every request; the
legacy TorchScript-based exporter (opset 17) is used because it handles this network's
nearest-neighbour upsampling with dynamic shapes and needs no onnxscript. Batch norms are folded
into their convolutions here, in float64, rather than by the exporter in float32: IEEE rounding
makes the folded weights the same on every CPU, so an export is byte-for-byte reproducible.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .artifacts import (
    CHECKPOINT_FILE,
    ONNX_FILE,
    ModelInfo,
    sha256,
    write_atomically,
    write_metadata,
)
from .checkpoint import load_checkpoint
from .scoring import Scorer
from .spec import INPUT_NAME, OUTPUT_NAMES, PAD_MULTIPLE

OPSET = 17


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """A copy of `net` with every Conv2d -> BatchNorm2d pair merged into the convolution.

    Element-wise float64 arithmetic (multiply, divide, square root) is correctly rounded, so the
    float32 result does not depend on which vector kernels the CPU has, unlike torch's folding."""
    folded = copy.deepcopy(net).eval().float()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                _merge(conv, norm)
                module[i + 1] = nn.Identity()
    return folded


def _merge(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    def f64(t: torch.Tensor | None) -> np.ndarray:
        return t.detach().double().numpy()

    scale = f64(norm.weight) / np.sqrt(f64(norm.running_var) + norm.eps)
    bias = np.zeros_like(scale) if conv.bias is None else f64(conv.bias)
    weight = f64(conv.weight) * scale[:, None, None, None]
    shift = f64(norm.bias) + (bias - f64(norm.running_mean)) * scale
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        conv.bias = nn.Parameter(torch.from_numpy(shift.astype(np.float32)))


def onnx_bytes(net: torch.nn.Module) -> bytes:
    """The network as an ONNX model (bytes), inputs (N, 1, H, W) of any N, H, W."""
    example = torch.zeros(1, 1, 2 * PAD_MULTIPLE, 2 * PAD_MULTIPLE)
    dynamic = {"n": 0, "h": 2, "w": 3}
    axes = {INPUT_NAME: {i: k for k, i in dynamic.items()}}
    axes.update({name: {0: "n", 2: "h4", 3: "w4"} for name in OUTPUT_NAMES})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            fold_batch_norms(net),
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=axes,
        )
    return buffer.getvalue()


def write_model_folder(
    folder: Path, net: torch.nn.Module, info: ModelInfo, scorer: Scorer, checkpoint: Path
) -> list[Path]:
    """Write ONNX + metadata into `folder` (copying the checkpoint there if it lives elsewhere);
    returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CHECKPOINT_FILE
    written = []
    if checkpoint.resolve() != target.resolve():
        written.append(write_atomically(target, checkpoint.read_bytes()))
    onnx_file = write_atomically(folder / ONNX_FILE, onnx_bytes(net))
    files = {
        "checkpoint": {"file": CHECKPOINT_FILE, "sha256": sha256(target)},
        "onnx": {
            "file": ONNX_FILE,
            "sha256": sha256(onnx_file),
            "opset": OPSET,
            "exporter": f"torch {torch.__version__}",
        },
    }
    return [*written, onnx_file, write_metadata(folder, info, scorer, files)]


def export_model(checkpoint: Path, folder: Path) -> list[Path]:
    """Export `checkpoint` into the model folder `folder`; returns the files written."""
    net, info, scorer = load_checkpoint(checkpoint)
    return write_model_folder(Path(folder), net, info, scorer, Path(checkpoint))
