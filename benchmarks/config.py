"""Settings of the Locust files, read from `BENCH_*` environment variables (defaults below).

- `BENCH_HOST_HEADER` (empty): `Host` header (`:authority` on gRPC) sent with every request, the
  InferenceService's host when `--host` is Knative's local gateway (the model is cluster-local),
  e.g. `circle-detector.circle-detector.svc.cluster.local`; empty sends the `--host`'s own.
- `BENCH_API_KEY` (empty): the backend's `X-API-Key` for uploads when its `API_KEY` is set.
- `BENCH_MODEL` (`circle-detector`): V2 model name.
- `BENCH_SIZES` (`256,512,1024`): sides in pixels of the synthetic images.
- `BENCH_REAL` (`true`): mix in the real photographs shipped with scikit-image.
- `BENCH_TIMEOUT_S` (`120`): timeout of one request (a cold start through the gateway is slow).
- `BENCH_SCORE_THRESHOLD` (empty: the server's default): `score_threshold` request parameter.
- `BENCH_BYTES_ENCODING` (`binary`): how V2 HTTP sends the image, `binary` (the binary tensor
  extension, raw file bytes) or `base64` (base64 text in JSON, for servers whose REST decodes
  BYTES as text, such as KServe's and MLServer's).

Settings live in environment variables because Locust owns the command line.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BenchSettings(BaseSettings):
    """Every field maps to `BENCH_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="BENCH_", extra="ignore")

    host_header: str = ""
    api_key: str = ""
    model: str = "circle-detector"
    sizes: str = "256,512,1024"
    real: bool = True
    timeout_s: float = Field(120.0, gt=0)
    score_threshold: float | None = Field(None, ge=0, le=1)
    bytes_encoding: Literal["binary", "base64"] = "binary"

    @property
    def size_list(self) -> list[int]:
        return [int(s) for s in self.sizes.split(",") if s.strip()]


@cache
def settings() -> BenchSettings:
    """Read once per process (each Locust run is its own process)."""
    return BenchSettings()


def split_host(host: str) -> tuple[str, bool]:
    """Locust's `--host` URL -> (`host:port` for tritonclient, TLS or not).

    `http://h:p` and a bare `h:p` are plaintext; `https://` and `grpcs://` use TLS.
    """
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    if scheme not in {"http", "https", "grpc", "grpcs"}:
        raise ValueError(f"--host {host!r}: the scheme must be http, https, grpc or grpcs")
    address = rest.split("/", 1)[0]
    if not address:
        raise ValueError(f"--host {host!r} names no host")
    return address, scheme in {"https", "grpcs"}
