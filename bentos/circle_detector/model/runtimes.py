"""The network behind one small interface, run by ONNX Runtime (serving's default) or torch.

A runtime takes a padded batch (N, 1, H, W) of float32 and gives the three dense outputs as NumPy
arrays; everything around it (preparation, decoding, refinement, scoring) is shared, so the two
runtimes differ only in the network call. Importing this module imports neither library.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .spec import INPUT_NAME, OUTPUT_NAMES

if TYPE_CHECKING:
    import torch

RUNTIMES = ("onnx", "torch")
Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]


class Network(Protocol):
    """The network call; `name` and `threads` describe it (model configuration, metrics)."""

    name: str
    threads: int

    def __call__(self, batch: np.ndarray) -> Outputs: ...


def default_threads() -> int:
    """Intra-op threads when none are configured: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OnnxNetwork:
    """The exported network in an ONNX Runtime session.

    One session serves every batch size and image size (dynamic N, H, W axes). It runs on the
    GPU when ONNX Runtime has its CUDA provider (the `onnxruntime-gpu` package on a machine
    with a GPU), else on the CPU with `threads` intra-op threads.
    """

    name = "onnxruntime"

    def __init__(
        self, model: str | Path | bytes, threads: int = 0, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        self.threads = threads or default_threads()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if providers is None:
            gpu = "CUDAExecutionProvider" in ort.get_available_providers()
            providers = ["CUDAExecutionProvider"] * gpu + ["CPUExecutionProvider"]
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=providers)
        self.providers = self.session.get_providers()

    def __call__(self, batch: np.ndarray) -> Outputs:
        heat, offset, log_radius = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        return heat, offset, log_radius


class TorchNetwork:
    """The torch module itself, eager, channels-last (about 1.2x faster on oneDNN's CPU convs)."""

    name = "torch"

    def __init__(self, net: torch.nn.Module, threads: int = 0) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.threads = torch.get_num_threads()
        self.net = net.eval().to(memory_format=torch.channels_last)

    def __call__(self, batch: np.ndarray) -> Outputs:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            heat, offset, log_radius = self.net(x)
            return heat.numpy(), offset.numpy(), log_radius.numpy()
