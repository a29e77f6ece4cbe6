"""The backend's tracing switch: off without the OTEL_* variables, a bad exporter logged (never
a failed start), and the client span's `traceparent` names that span.

The cross-process chain (backend -> Bento -> batch) is `tests/test_tracing_e2e.py`.
"""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI

from backend import tracing


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def test_off_by_default_no_provider_and_no_headers() -> None:
    assert tracing.instrument(FastAPI()) is None
    with tracing.client_span("ModelInfer", {}) as headers:
        assert headers == {}


def test_an_exporter_not_installed_is_logged_and_tracing_stays_off(monkeypatch, caplog) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with caplog.at_level(logging.ERROR, logger="backend.tracing"):
        assert tracing.instrument(FastAPI()) is None
    assert "OTEL_TRACES_EXPORTER" in caplog.text


def test_the_client_span_sends_its_own_traceparent(monkeypatch) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setattr(tracing, "_tracer", TracerProvider().get_tracer("test"))
    with tracing.client_span("ModelInfer", {"rpc.system": "grpc"}) as headers:
        context = trace.get_current_span().get_span_context()
        version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == context.trace_id and int(span_id, 16) == context.span_id
