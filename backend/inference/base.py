"""What every inference client returns and raises, independent of transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Circle:
    """One detected circle in the original image's pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    cx: float
    cy: float
    radius: float
    score: float


@dataclass(frozen=True)
class InferenceResult:
    """Circles for one image and the model that found them."""

    model_name: str
    model_version: str
    circles: list[Circle]
    inference_ms: float
    attempts: int = 1
    extra: dict[str, str] = field(default_factory=dict)


class InferenceError(RuntimeError):
    """Detection did not produce a result."""


class ModelUnavailableError(InferenceError):
    """The model server could not be reached or was not ready: worth retrying later."""

    attempts: int = 1


class ModelRejectedError(InferenceError):
    """The model server refused this request (4xx): retrying the same image will not help."""


class InferenceClient(Protocol):
    """Detect circles in one encoded image."""

    async def infer(
        self, data: bytes, *, width: int, height: int, score_threshold: float, max_detections: int
    ) -> InferenceResult:
        """Circles in `data` (an encoded image of `width` x `height`), best first."""

    async def ready(self) -> None:
        """Raise ModelUnavailableError (saying why) unless the model can serve now."""

    async def close(self) -> None:
        """Release connections."""
