"""The in-process detector: images in, calibrated circles in original-image pixels out.

This is the one place where the model's logic lives; the CLI, the Bento and the benchmarks all
call `CircleDetector`. It needs neither torch nor onnxruntime itself: the network is a
`runtimes.Network`, ONNX Runtime (the default) or torch, and everything around it is NumPy and
OpenCV.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .artifacts import (
    MODEL_DIR,
    MODEL_NAME,
    WEIGHTS_PATH,
    ModelFileError,
    ModelInfo,
    checked_file,
    read_metadata,
)
from .decoding import circle_nms, decode_candidates
from .imageio import to_gray_float
from .refine import refine_circles
from .runtimes import RUNTIMES, Network, OnnxNetwork, TorchNetwork
from .scoring import Scorer, edge_features, image_noise
from .spec import PAD_MULTIPLE

__all__ = ["MODEL_NAME", "WEIGHTS_PATH", "CircleDetector", "ModelInfo", "Prepared", "prepare"]

#: The documented operating point: scores are calibrated so that 0.5 means "more likely than not".
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MAX_DETECTIONS = 100
#: Longer image sides are downscaled to this before the network; refinement uses full resolution.
DEFAULT_MAX_SIDE = 1024
#: Candidates below this raw heatmap score are not refined or reported.
MIN_CANDIDATE_SCORE = 0.05


@dataclass(frozen=True)
class Circle:
    """One detected circle in the original image's pixel coordinates (pixel centres at integers)."""

    cx: float
    cy: float
    r: float
    score: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.cx - self.r, self.cy - self.r, self.cx + self.r, self.cy + self.r)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bbox": [round(v, 2) for v in self.bbox],
            "center": [round(self.cx, 2), round(self.cy, 2)],
            "radius": round(self.r, 2),
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Prepared:
    """An image ready for the network: standardised grey, its scale, and the full-res grey."""

    tensor: np.ndarray  # (h, w) float32, standardised, downscaled
    scale: float  # network pixels per original pixel
    grey: np.ndarray  # (H, W) float32 in [0, 1], original resolution

    @cached_property
    def noise(self) -> float:
        """Pixel noise of the full-resolution grey image; scores need it only for candidates."""
        return image_noise(self.grey)


def prepare(image: np.ndarray, max_side: int = DEFAULT_MAX_SIDE) -> Prepared:
    """Normalise any pixel layout to grey, downscale to `max_side`, standardise contrast."""
    grey = to_gray_float(image)
    h, w = grey.shape
    scale = min(1.0, max_side / max(h, w))
    small = grey
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        scale = size[0] / w
    std = max(float(small.std()), 0.02)
    tensor = ((small - float(small.mean())) / std).astype(np.float32)
    return Prepared(tensor, scale, grey)


def padded_shape(array: np.ndarray) -> tuple[int, int]:
    """The network input shape of one image: each side rounded up to a multiple of 32."""
    return (
        math.ceil(array.shape[0] / PAD_MULTIPLE) * PAD_MULTIPLE,
        math.ceil(array.shape[1] / PAD_MULTIPLE) * PAD_MULTIPLE,
    )


def stack_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Zero-pad (the standardised mean) same-shaped 2-D arrays to one (N, 1, H, W) batch."""
    height, width = padded_shape(arrays[0])
    batch = np.zeros((len(arrays), 1, height, width), dtype=np.float32)
    for i, a in enumerate(arrays):
        batch[i, 0, : a.shape[0], : a.shape[1]] = a
    return batch


class CircleDetector:
    """A network runtime with the model's score: detects circles in batches of images."""

    def __init__(
        self,
        network: Network,
        info: ModelInfo,
        scorer: Scorer | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        self.network = network
        self.info = info
        self.scorer = scorer or Scorer()
        self.max_side = max_side

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        runtime: str = "onnx",
        threads: int = 0,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> CircleDetector:
        """Load a model folder (the committed one by default) or a torch checkpoint file.

        `runtime="onnx"` runs the folder's exported network with ONNX Runtime; given a
        checkpoint file instead, it exports that network in memory first (torch needed).
        `runtime="torch"` runs the checkpoint's network with torch. Unreadable or inconsistent
        files raise `ModelFileError`.
        """
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        path = Path(path) if path is not None else MODEL_DIR
        if not path.exists():
            raise ModelFileError(f"{path} does not exist")
        if path.is_dir():
            info, scorer, files = read_metadata(path)
            if runtime == "onnx":
                onnx_file = checked_file(path, files, "onnx")
                try:
                    network: Network = OnnxNetwork(onnx_file, threads)
                except Exception as exc:  # onnxruntime raises its own kinds for a bad file
                    raise ModelFileError(
                        f"{onnx_file} is not a loadable ONNX model: {exc}"
                    ) from exc
                return cls(network, info, scorer, max_side)
            path = checked_file(path, files, "checkpoint")
        from .checkpoint import load_checkpoint

        net, info, scorer = load_checkpoint(path)
        if runtime == "torch":
            network = TorchNetwork(net, threads)
        else:
            from .export import onnx_bytes

            network = OnnxNetwork(onnx_bytes(net), threads)
        return cls(network, info, scorer, max_side)

    def candidates(self, prepared: Sequence[Prepared]) -> list[np.ndarray]:
        """Raw candidates (cx, cy, r, heat) in original pixels, before refinement.

        Images run through the network together only when their padded shapes agree, so an
        image's result never depends on what else was in its batch.
        """
        groups: dict[tuple[int, int], list[int]] = {}
        for i, p in enumerate(prepared):
            groups.setdefault(padded_shape(p.tensor), []).append(i)
        decoded: list[np.ndarray] = [np.zeros((0, 4), dtype=np.float32)] * len(prepared)
        for members in groups.values():
            batch = stack_padded([prepared[i].tensor for i in members])
            outputs = decode_candidates(*self.network(batch), min_score=MIN_CANDIDATE_SCORE)
            for i, rows in zip(members, outputs, strict=True):
                decoded[i] = rows
        out = []
        for p, rows in zip(prepared, decoded, strict=True):
            h, w = p.tensor.shape
            inside = (rows[:, 0] < w) & (rows[:, 1] < h)
            rows = rows[inside].copy()
            rows[:, :2] = (rows[:, :2] + 0.5) / p.scale - 0.5
            rows[:, 2] = rows[:, 2] / p.scale
            out.append(rows)
        return out

    def measure(
        self, p: Prepared, rows: np.ndarray, score_threshold: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Refine the candidates that could reach `score_threshold` and measure their edges.

        Returns rows (K, 4) of refined cx, cy, r and the raw heat, and their edge features
        (K, F), the scorer's inputs.
        """
        if len(rows):
            rows = rows[self.scorer.best_possible(rows[:, 3]) >= score_threshold]
        if len(rows) == 0:
            return np.zeros((0, 4)), edge_features([], np.zeros((0, 3)), 1.0)
        fits = refine_circles(p.grey, rows[:, :3])
        refined = np.array([(f.cx, f.cy, f.r, row[3]) for f, row in zip(fits, rows, strict=True)])
        return refined, edge_features(fits, rows, p.noise)

    def finish(self, p: Prepared, rows: np.ndarray, score_threshold: float = 0.0) -> np.ndarray:
        """Refine and score every candidate, suppress duplicates: (K, 4) best first."""
        refined, features = self.measure(p, rows, score_threshold)
        refined[:, 3] = self.scorer.score(refined[:, 3], features)
        return circle_nms(refined.astype(np.float32), iou_threshold=0.5)

    def detect_arrays(
        self,
        images: Sequence[np.ndarray],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> list[np.ndarray]:
        """Detections as float32 arrays (K, 4) of (cx, cy, r, score), best first, per image."""
        prepared = [prepare(image, self.max_side) for image in images]
        results = []
        for p, rows in zip(prepared, self.candidates(prepared), strict=True):
            circles = self.finish(p, rows, score_threshold)
            circles = circles[circles[:, 3] >= score_threshold][:max_detections]
            results.append(circles)
        return results

    def detect(
        self,
        images: Sequence[np.ndarray],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> list[list[Circle]]:
        """Detect circles in each image; see `detect_arrays`."""
        arrays = self.detect_arrays(images, score_threshold, max_detections)
        return [[Circle(*map(float, row)) for row in arr] for arr in arrays]
