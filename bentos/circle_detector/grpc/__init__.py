"""V2 gRPC transport: the servicer (`servicer.py`) and its message codec (`codec.py`)."""

from .servicer import SERVICE, InferenceServicer, start_server

__all__ = ["SERVICE", "InferenceServicer", "start_server"]
