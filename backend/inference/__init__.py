"""Inference clients: the real V2 client (tritonclient) and the seeded dummy, chosen by MODE."""

from __future__ import annotations

from backend.config import Mode, Settings
from backend.inference.base import (
    Circle,
    InferenceClient,
    InferenceError,
    InferenceResult,
    ModelMisconfiguredError,
    ModelRejectedError,
    ModelServerError,
    ModelUnavailableError,
)
from backend.inference.retry import with_retries

__all__ = [
    "Circle",
    "InferenceClient",
    "InferenceError",
    "InferenceResult",
    "ModelMisconfiguredError",
    "ModelRejectedError",
    "ModelServerError",
    "ModelUnavailableError",
    "make_client",
    "with_retries",
]


def make_client(settings: Settings) -> InferenceClient:
    """The client MODE asks for."""
    if settings.mode == Mode.DUMMY:
        from backend.inference.dummy import DummyClient

        return DummyClient(settings.model_name, settings.dummy_seed)
    from backend.inference.v2 import V2Client

    return V2Client(settings)
