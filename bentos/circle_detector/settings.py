"""The Bento's settings, read once from environment variables (defaults documented inline).

- `CIRCLE_DETECTOR_MODEL_TAG` (`circle-detector:latest`): BentoML model-store tag to serve.
- `CIRCLE_DETECTOR_MAX_BATCH_SIZE` (`32`): adaptive batching, most images per network call.
- `CIRCLE_DETECTOR_MAX_LATENCY_MS` (`30000`): adaptive batching, a request queued longer
  than this is refused with 503.
- `CIRCLE_DETECTOR_MAX_PIXELS` (`16777216`): largest image (width x height), checked before
  decoding.
- `CIRCLE_DETECTOR_MAX_IMAGES` (`64`): most images in one inference request.
- `CIRCLE_DETECTOR_MAX_REQUEST_PIXELS` (`0`: 4 x max pixels): all images of one request
  together, read from the headers before decoding (bounds a request's memory).
- `CIRCLE_DETECTOR_MAX_BODY_BYTES` (`268435456`): largest REST request body / gRPC message.
- `CIRCLE_DETECTOR_PREPROCESS_THREADS` (`2`): threads that decode, resize and refine beside
  the network.
- `CIRCLE_DETECTOR_GRPC_PORT` (`8081`): port of the V2 gRPC server (`0` disables it).
- `CIRCLE_DETECTOR_GRPC_HOST` (`0.0.0.0`): address the gRPC server binds.
- `CIRCLE_DETECTOR_WORKERS` (`1`): BentoML worker processes.
- `CIRCLE_DETECTOR_TORCH_THREADS` (`0`): torch intra-op threads (`0`: torch's default).
- `PORT` (`3000`): HTTP port when `--port`/`BENTOML_PORT` is not given (Knative sets it).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .model.imageio import DEFAULT_MAX_PIXELS


class BentoSettings(BaseSettings):
    """Typed settings; every field maps to `CIRCLE_DETECTOR_<FIELD>` except `port` (`PORT`)."""

    model_config = SettingsConfigDict(env_prefix="CIRCLE_DETECTOR_", extra="ignore")

    model_tag: str = "circle-detector:latest"
    max_batch_size: int = Field(32, ge=2)
    max_latency_ms: int = Field(30000, ge=1)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=64)
    max_images: int = Field(64, ge=1)
    max_request_pixels: int = Field(0, ge=0)
    max_body_bytes: int = Field(256 * 1024 * 1024, ge=1024)
    preprocess_threads: int = Field(2, ge=1)
    grpc_port: int = Field(8081, ge=0, le=65535)
    grpc_host: str = "0.0.0.0"
    workers: int = Field(1, ge=1)
    torch_threads: int = Field(0, ge=0)
    port: int = Field(3000, ge=1, le=65535, validation_alias="PORT")


def load_settings() -> BentoSettings:
    """Read the environment now (tests set variables before starting a server)."""
    return BentoSettings()
