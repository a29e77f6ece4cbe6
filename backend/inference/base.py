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
    """Detection did not produce a result; `attempts` says how many calls were made."""

    attempts: int = 1


class ModelUnavailableError(InferenceError):
    """Transient: the model server was unreachable, not ready, overloaded (429, 502-504) or slow.

    Worth retrying later; `retry_after_s` is the server's Retry-After, when it sent one.
    """

    retry_after_s: float | None = None


class ModelRejectedError(InferenceError):
    """The model server refused this request (4xx): retrying the same image will not help."""


class ModelMisconfiguredError(ModelRejectedError):
    """A configuration error (unknown MODEL_NAME, a gateway's 401/403/404, a TLS failure): no
    image can succeed until an operator fixes it; `/health/ready` reports it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"misconfigured: {message}")


class ModelServerError(InferenceError):
    """The model server failed on this request (500, gRPC INTERNAL/UNKNOWN).

    Maybe a passing fault, maybe one this image always causes: retried a few times
    (MODEL_SERVER_ERROR_ATTEMPTS), then the image is failed instead of being retried forever.
    """


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
