"""OpenTelemetry tracing of the backend: its request spans and its calls to the model server.

Off by default, on by the standard `OTEL_*` variables exactly as the Bento's tracing is
(`bentos/circle_detector/tracing.py`, which also builds the exporter): `OTEL_TRACES_EXPORTER=otlp`
or an `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`; `OTEL_SDK_DISABLED=true` keeps it off. Off, the
backend imports nothing of OpenTelemetry and both helpers are no-ops.

On, `instrument(app)` adds OpenTelemetry's FastAPI instrumentation (one SERVER span per request,
continuing an incoming `traceparent`), and `client_span` wraps each tritonclient call in a
CLIENT span whose W3C `traceparent` goes out in the HTTP headers or the gRPC metadata, so the
Bento's `V2 ModelInfer` span and its `batch` span join the upload's trace. The default service
name is `circle-detector-backend` (`OTEL_SERVICE_NAME` overrides it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from bentos.circle_detector.tracing import TracingConfigError, make_provider

log = logging.getLogger(__name__)

SERVICE_NAME = "circle-detector-backend"
#: Probes and scrapes: no span for them (a regex list, as the instrumentation takes it).
EXCLUDED_URLS = "/health,/metrics"

_tracer: Any = None


def instrument(app: Any) -> Any:
    """Trace `app`'s requests if the environment turns tracing on; the provider, or None.

    An exporter or protocol that is not installed is logged (naming the variable) and leaves
    tracing off, as on the Bento: tracing never keeps the service from starting.
    """
    global _tracer
    try:
        provider = make_provider(SERVICE_NAME)
    except TracingConfigError as exc:
        log.error("tracing off: %s", exc)
        return None
    if provider is None:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )
    _tracer = provider.get_tracer(__name__)
    return provider


def shutdown(provider: Any) -> None:
    """Export what is still buffered (at the app's shutdown)."""
    global _tracer
    if provider is not None:
        provider.shutdown()
        _tracer = None


@contextlib.contextmanager
def client_span(name: str, attributes: dict[str, Any]) -> Iterator[dict[str, str]]:
    """A CLIENT span around one model-server call; yields the headers (`traceparent`) to send
    with it, {} when tracing is off."""
    if _tracer is None:
        yield {}
        return
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    with _tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)
        yield headers
