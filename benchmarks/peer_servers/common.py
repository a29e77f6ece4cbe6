"""What both peers do with a request: the project's own model code, nothing of the Bento's."""

from __future__ import annotations

import base64
import os

import numpy as np

from bentos.circle_detector.model.detector import CircleDetector
from bentos.circle_detector.model.imageio import decode_image
from bentos.circle_detector.runtime.circle import OUTPUTS, output_tensors

__all__ = ["OUTPUTS", "detect", "load_detector"]


def load_detector() -> CircleDetector:
    """The committed model, with the runtime and threads `peers.py` passes in the environment."""
    return CircleDetector.load(
        runtime=os.environ.get("PEER_RUNTIME", "onnx"),
        threads=int(os.environ.get("PEER_THREADS", "0")),
    )


def detect(detector: CircleDetector, items: np.ndarray | list) -> dict[str, np.ndarray]:
    """Encoded images (raw bytes, or base64 text as KServe's JSON carries them) -> V2 outputs."""
    images = [
        decode_image(base64.b64decode(item) if isinstance(item, str) else bytes(item))
        for item in np.asarray(items, dtype=object).reshape(-1)
    ]
    return output_tensors(detector.detect_arrays(images))
