"""OpenTelemetry tracing of the V2 requests and of the batches they ran in; off by default.

Tracing is on when `OTEL_TRACES_EXPORTER` names `otlp` (or `console`), or, with that variable
unset, when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
`OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keeps it off. Off, this module imports
nothing of OpenTelemetry (the standalone launcher's cold start pays nothing) and every helper
is a no-op. On, spans go by OTLP/HTTP (protobuf) to the standard `OTEL_EXPORTER_OTLP_*`
endpoint, batched by the SDK's `OTEL_BSP_*` settings, sampled by `OTEL_TRACES_SAMPLER`, named
by `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (default service name: the caller's).

Spans of the Bento:

- `V2 ModelInfer` (kind SERVER), one per REST or gRPC infer, child of the W3C `traceparent`
  the request's headers or gRPC metadata carry.
- `batch` (kind INTERNAL), one per network call: a child of the span of the oldest request in
  the batch, with a span link to the span of every request in it, and `batch.size` (images).
  The trace of a lone upload therefore shows the whole chain, backend request -> client call
  -> V2 request -> batch; a request that joined an older request's batch reaches it by the
  link (Jaeger and Tempo show links), not as a child: one span per network call keeps the
  batch's timing in one place instead of copying it into every request.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

#: The exporters `OTEL_TRACES_EXPORTER` may name (a comma-separated list).
EXPORTERS = ("otlp", "console", "none")
#: The one OTLP protocol installed (the gRPC exporter would add grpcio's exporter stack).
OTLP_PROTOCOL = "http/protobuf"

_tracer: Any = None
_provider: Any = None


class TracingConfigError(ValueError):
    """An `OTEL_*` variable names something this server cannot do (the message says which)."""


def _exporters(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for; [] when tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not raw:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={raw!r}: unknown exporter {unknown[0]!r} "
            f"(one of {', '.join(EXPORTERS)})"
        )
    return [name for name in names if name != "none"]


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the `OTEL_*` variables turn tracing on (see the module's docstring)."""
    return bool(_exporters(os.environ if environ is None else environ))


def make_provider(default_service_name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A `TracerProvider` exporting as the environment says, or None when tracing is off.

    Raises `TracingConfigError` naming the variable when the exporter or protocol is unknown.
    """
    environ = os.environ if environ is None else environ
    exporters = _exporters(environ)
    if not exporters:
        return None
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable, "").strip()
        if protocol and protocol != OTLP_PROTOCOL:
            raise TracingConfigError(f"{variable}={protocol!r}: only {OTLP_PROTOCOL} is installed")
        if protocol:
            break
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": default_service_name})
    )
    for name in exporters:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def configure(default_service_name: str = "circle-detector") -> bool:
    """Set up this process's tracer once, if the environment turns tracing on; True if on."""
    global _tracer, _provider
    if _tracer is None:
        _provider = make_provider(default_service_name)
        if _provider is not None:
            _tracer = _provider.get_tracer(__name__)
            logger.info("tracing on: spans exported by %s", _exporters(os.environ))
    return _tracer is not None


def shutdown() -> None:
    """Export what is still buffered and stop the exporter (at server shutdown)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


Carrier = Mapping[str, str] | Iterable[tuple[str, Any]]


def server_span(name: str, carrier: Carrier | Callable[[], Carrier | None]) -> Any:
    """A context manager: the SERVER span `name`, child of the carrier's `traceparent`
    (headers, or gRPC metadata pairs, or a function that returns them: called only when
    tracing is on); a no-op when tracing is off."""
    if _tracer is None:
        return contextlib.nullcontext()
    if callable(carrier):
        carrier = carrier() or ()
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if not isinstance(carrier, Mapping):
        carrier = {str(key).lower(): value for key, value in carrier}
    parent = TraceContextTextMapPropagator().extract(carrier)
    return _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER)


def fail(code: int, message: str) -> None:
    """Mark the current span failed with gRPC status `code` (a status the transport answers
    without raising); a no-op when tracing is off."""
    if _tracer is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", code)
    span.set_status(Status(StatusCode.ERROR, message))


def current() -> Any:
    """The current span's context, to link a batch to it later; None when tracing is off."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


@contextlib.contextmanager
def batch_span(contexts: Iterable[Any], size: int) -> Iterator[None]:
    """The `batch` span of one network call: child of the first (oldest) request's span,
    linked to every request's span; a no-op when tracing is off."""
    if _tracer is None:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link

    unique = list({c.span_id: c for c in contexts if c is not None}.values())
    # Never the worker task's own context: it is the context of whichever request started it.
    parent = trace.set_span_in_context(trace.NonRecordingSpan(unique[0])) if unique else Context()
    links = [Link(c) for c in unique]
    with _tracer.start_as_current_span(
        "batch", context=parent, links=links, attributes={"batch.size": size}
    ):
        yield
