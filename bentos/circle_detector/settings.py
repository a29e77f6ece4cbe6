"""The Bento's settings, read once from environment variables (defaults documented inline).

- `CIRCLE_DETECTOR_MODEL_TAG` (`circle-detector:latest`): BentoML model-store tag to serve
  when no model directory is given.
- `CIRCLE_DETECTOR_MODEL_DIR` (empty): serve this model directory instead of the model store:
  a model folder as `circle-detector export` writes it, or one subfolder per version (the
  versions `CIRCLE_DETECTOR_VERSION_POLICY` selects are served); KServe's `--model_dir`,
  usually `/mnt/models`, read-only.
- `CIRCLE_DETECTOR_VERSION_POLICY` (`latest:1`): which versions of a model directory with one
  subfolder per version are served side by side, Triton's version policy: `latest:N` (the
  newest N), `all`, or `specific:V1,V2`; `POST /v2/repository/models/{m}/load` may override it.
- `CIRCLE_DETECTOR_READ_ONLY` (`auto`): `true` refuses repository load and unload (403,
  gRPC PERMISSION_DENIED), `false` allows them; `auto` is read-only in Kubernetes (where
  `KUBERNETES_SERVICE_HOST` is set, as under KServe's launcher, whose model directory is a
  read-only mount) and writable elsewhere.
- `CIRCLE_DETECTOR_MODEL_NAME` (empty: the model's own name, `circle-detector`): the name it
  is served under, `/v2/models/{name}`; KServe's `--model_name` (the InferenceService's name).
- `CIRCLE_DETECTOR_RUNTIME` (`onnx`): the network's runtime, `onnx` (ONNX Runtime) or `torch`
  (needs torch installed; the Bento's image has none).
- `CIRCLE_DETECTOR_THREADS` (`0`): the network's intra-op threads (`0`: every CPU the process
  may use).
- `CIRCLE_DETECTOR_MAX_BATCH_SIZE` (`32`): adaptive batching, most images per network call
  (`1` turns batching off).
- `CIRCLE_DETECTOR_MAX_LATENCY_MS` (`30000`): adaptive batching, an image that waited longer
  than this for the network is refused with 429 (gRPC RESOURCE_EXHAUSTED).
- `CIRCLE_DETECTOR_MAX_QUEUE_SIZE` (`0`: derived): adaptive batching, most images waiting for
  the network; a request that would overfill the queue is refused at once with 429 and
  `Retry-After` (gRPC RESOURCE_EXHAUSTED), unless it has a higher `priority` than queued
  requests, which are refused in its place. `0` derives the bound from the other two: what the
  network runs in half of `MAX_LATENCY_MS` at its measured speed per image, at least
  `MAX_BATCH_SIZE` (so the accepted requests' queue wait stays within the latency budget).
- `CIRCLE_DETECTOR_MAX_IN_FLIGHT` (`0`: derived): most images a model version works on at once,
  from arrival to answer (decoding, network and refinement); a request past it is refused on
  arrival, before any decoding, with 429 and `Retry-After` (gRPC RESOURCE_EXHAUSTED). `0`
  derives it: the images completed in half of `MAX_LATENCY_MS` at the rate measured while busy,
  at least `MAX_BATCH_SIZE`; requests more urgent than the default `priority` may go a quarter
  past it.
- `CIRCLE_DETECTOR_MAX_PIXELS` (`16777216`): largest image (width x height), checked before
  decoding.
- `CIRCLE_DETECTOR_MAX_IMAGES` (`64`): most images in one inference request.
- `CIRCLE_DETECTOR_MAX_REQUEST_PIXELS` (`0`: 4 x max pixels): all images of one request
  together, read from the headers before decoding (bounds a request's memory).
- `CIRCLE_DETECTOR_MAX_BODY_BYTES` (`268435456`, 256 MiB): largest REST body with binary
  tensors (the binary extension), after decompression.
- `CIRCLE_DETECTOR_MAX_JSON_BYTES` (`8388608`, 8 MiB): largest JSON-only REST body, and
  largest JSON header of a binary-extension body, after decompression (JSON costs about 20
  times its size in Python objects).
- `CIRCLE_DETECTOR_GRPC_MAX_MESSAGE_BYTES` (`67108864`, 64 MiB): largest gRPC message
  (typed contents cost up to 8 times their wire size once parsed).
- `CIRCLE_DETECTOR_MAX_TYPED_ELEMENTS` (`2097152`): most elements of a gRPC tensor sent as
  typed `contents` (a message whose typed part is over 2 bytes an element is refused before it
  is parsed: parsing holds the GIL, 11 ns an element); larger tensors go in
  `raw_input_contents`, as tritonclient sends them.
- `CIRCLE_DETECTOR_BUDGET_BYTES` (`536870912`, 512 MiB): in-flight request bytes of the whole
  process (REST bodies at their in-memory cost, gRPC messages); beyond it requests wait.
- `CIRCLE_DETECTOR_BUDGET_PIXELS` (`0`: 4 x max pixels): decoded pixels in flight in the whole
  process; beyond it requests wait.
- `CIRCLE_DETECTOR_ADMISSION_TIMEOUT_S` (`30`): longest wait for either budget, then 503 with
  `Retry-After` (gRPC RESOURCE_EXHAUSTED).
- `CIRCLE_DETECTOR_HEADER_TIMEOUT_S` (`10`): a connection's request headers must arrive within
  this (slowloris); then 408 and the connection is closed. Both launchers.
- `CIRCLE_DETECTOR_BODY_TIMEOUT_S` (`60`): an infer request's body must arrive within this
  from its headers; then 408.
- `CIRCLE_DETECTOR_READY_DEADLINE_S` (`300`): a server not ready this long after start-up
  (warm-up failing) reports not live (`/v2/health/live` 503, gRPC `live=false`), so that
  Kubernetes restarts it. The warm-up is retried meanwhile, with backoff from 0.5 s to 30 s.
- `CIRCLE_DETECTOR_WARMUP_FAULTS` (`0`): test hook, the first N warm-ups fail on purpose.
- `CIRCLE_DETECTOR_PREPROCESS_THREADS` (`2`): threads that decode, resize and refine beside
  the network.
- `CIRCLE_DETECTOR_GRPC_PORT` (`8081`): port of the V2 gRPC server (`0` disables it).
- `CIRCLE_DETECTOR_GRPC_HOST` (`0.0.0.0`): address the gRPC server binds.
- `CIRCLE_DETECTOR_WORKERS` (`1`): BentoML worker processes (`bentoml serve` only).
- `PORT` (`3000`): HTTP port when `--port`/`BENTOML_PORT` is not given (Knative sets it).
- `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_TRACES_EXPORTER` (empty: tracing off): OpenTelemetry
  spans of every V2 inference (`V2 ModelInfer`, continuing the caller's `traceparent`) and of
  every network call (`batch`), exported by OTLP/HTTP; `OTEL_SDK_DISABLED=true` keeps it off.
  Read by `tracing.py` (which documents the spans) with OpenTelemetry's own `OTEL_*` names.

Parsed with the standard library rather than pydantic-settings, whose import alone takes a
quarter of a second of the single-process server's one-second cold start on 2 cores.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .model.imageio import DEFAULT_MAX_PIXELS
from .model.runtimes import RUNTIMES
from .version_policy import PolicyError, VersionPolicy

PREFIX = "CIRCLE_DETECTOR_"


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use; the message names it."""


@dataclass(frozen=True)
class BentoSettings:
    """Typed settings; every field maps to `CIRCLE_DETECTOR_<FIELD>` except `port` (`PORT`)."""

    model_tag: str = "circle-detector:latest"
    model_dir: str = ""
    model_name: str = ""
    version_policy: str = "latest:1"
    read_only: str = "auto"
    runtime: str = "onnx"
    threads: int = 0
    max_batch_size: int = 32
    max_latency_ms: int = 30000
    max_queue_size: int = 0
    max_in_flight: int = 0
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = 64
    max_request_pixels: int = 0
    max_body_bytes: int = 256 * 1024 * 1024
    max_json_bytes: int = 8 * 1024 * 1024
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    max_typed_elements: int = 1 << 21
    budget_bytes: int = 512 * 1024 * 1024
    budget_pixels: int = 0
    admission_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    ready_deadline_s: float = 300.0
    warmup_faults: int = 0
    preprocess_threads: int = 2
    grpc_port: int = 8081
    grpc_host: str = "0.0.0.0"
    workers: int = 1
    port: int = 3000


#: Inclusive bounds of the integer settings.
_BOUNDS: dict[str, tuple[int, int | None]] = {
    "threads": (0, None),
    "max_batch_size": (1, None),
    "max_latency_ms": (1, None),
    "max_queue_size": (0, None),
    "max_in_flight": (0, None),
    "max_pixels": (64, None),
    "max_images": (1, None),
    "max_request_pixels": (0, None),
    "max_body_bytes": (1024, None),
    "max_json_bytes": (1024, None),
    "grpc_max_message_bytes": (1024, 2**31 - 1),
    "max_typed_elements": (1, None),
    "budget_bytes": (1024 * 1024, None),
    "budget_pixels": (0, None),
    "warmup_faults": (0, None),
    "preprocess_threads": (1, None),
    "grpc_port": (0, 65535),
    "workers": (1, None),
    "port": (1, 65535),
}
_CHOICES = {"runtime": RUNTIMES, "read_only": ("auto", "true", "false")}
#: Settings in seconds: positive numbers, fractions allowed.
_SECONDS = frozenset(
    {"admission_timeout_s", "header_timeout_s", "body_timeout_s", "ready_deadline_s"}
)


def variable(name: str) -> str:
    """The environment variable of a setting."""
    return "PORT" if name == "port" else PREFIX + name.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> BentoSettings:
    """Read the environment now (tests set variables before starting a server)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(BentoSettings):
        raw = env.get(variable(f.name))
        if raw is None or raw == "":
            continue
        values[f.name] = _parse(f.name, raw.strip())
    return BentoSettings(**values)  # type: ignore[arg-type]


def _parse(name: str, raw: str) -> object:
    if name == "version_policy":
        try:
            VersionPolicy.parse(raw)
        except PolicyError as exc:
            raise SettingsError(f"{variable(name)}={exc}") from None
        return raw
    if name in _CHOICES:
        if raw not in _CHOICES[name]:
            raise SettingsError(f"{variable(name)}={raw!r}: use one of {', '.join(_CHOICES[name])}")
        return raw
    if name in _SECONDS:
        try:
            seconds = float(raw)
        except ValueError:
            raise SettingsError(f"{variable(name)}={raw!r} is not a number of seconds") from None
        if not 0 < seconds < float("inf"):
            raise SettingsError(f"{variable(name)}={raw} must be a positive number of seconds")
        return seconds
    if name not in _BOUNDS:
        return raw
    try:
        value = int(raw)
    except ValueError:
        expected = "a port number between 1 and 65535" if name == "port" else "an integer"
        raise SettingsError(f"{variable(name)}={raw!r}: expected {expected}") from None
    low, high = _BOUNDS[name]
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise SettingsError(f"{variable(name)}={value} must be {bound}")
    return value


def http_port(environ: Mapping[str, str] | None = None, default: int = 3000) -> int:
    """The HTTP port from `BENTOML_PORT`, then `PORT` (Knative), else `default`; empty values
    count as unset, anything else must be a port number (the error names the variable)."""
    env = os.environ if environ is None else environ
    for name in ("BENTOML_PORT", "PORT"):
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
            raise SettingsError(f"{name}={raw!r}: expected a port number between 1 and 65535")
        return int(raw)
    return default


def is_read_only(settings: BentoSettings, environ: Mapping[str, str] | None = None) -> bool:
    """`CIRCLE_DETECTOR_READ_ONLY`, with `auto` read-only in Kubernetes."""
    if settings.read_only != "auto":
        return settings.read_only == "true"
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST"))
