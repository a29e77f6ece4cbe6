"""The Bento's tracing: on only by the standard OTEL_* variables, nothing imported when off, and
one `batch` span per network call, child of the oldest request's span and linked to all.

The two-process trace (backend -> Bento -> batch, HTTP and gRPC) is `tests/test_tracing_e2e.py`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bentos.circle_detector import tracing
from bentos.circle_detector.batching import AdaptiveBatcher
from tests.backend.helpers import circles_png
from tests.servers import REPO_ROOT, free_port

ENDPOINT = "http://127.0.0.1:4318"


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, False),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT}, True),
        ({"OTEL_SERVICE_NAME": "x"}, False),  # naming a service turns nothing on
    ],
)
def test_only_the_standard_variables_turn_tracing_on(environ: dict[str, str], on: bool) -> None:
    assert tracing.enabled(environ) is on


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_what_is_not_installed_is_refused_naming_the_variable(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(tracing.TracingConfigError, match=variable):
        tracing.make_provider("test", environ)


def test_default_service_name_yields_to_otel_service_name() -> None:
    on = {"OTEL_TRACES_EXPORTER": "console"}
    named = tracing.make_provider("fallback", {**on, "OTEL_SERVICE_NAME": "mine"})
    unnamed = tracing.make_provider("fallback", on)
    try:
        assert unnamed.resource.attributes["service.name"] == "fallback"
        # OTEL_SERVICE_NAME is read by the SDK from the real environment, not from `environ`:
        # the default is only left out for it.
        assert named.resource.attributes["service.name"] != "fallback"
    finally:
        named.shutdown()
        unnamed.shutdown()


def test_a_batch_span_is_a_child_of_its_oldest_request_and_links_them_all(monkeypatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))

    first_running, release_first = threading.Event(), threading.Event()

    def run(items: list[int]) -> list[int]:
        if items == [1]:  # held until the second and third requests queue: one batch of two
            first_running.set()
            assert release_first.wait(10)
        return items

    async def scenario() -> None:
        batcher: AdaptiveBatcher[int, int] = AdaptiveBatcher(
            run, max_batch_size=8, max_latency_ms=5000
        )

        async def request(i: int) -> list[int]:
            with tracing.server_span(f"request {i}", {}):
                return await batcher.submit([i])

        first = asyncio.create_task(request(1))
        assert await asyncio.to_thread(first_running.wait, 10)
        others = [asyncio.create_task(request(i)) for i in (2, 3)]
        await asyncio.sleep(0)  # each task's first step queues its image
        assert batcher.queued == 2
        release_first.set()
        assert await asyncio.gather(first, *others) == [[1], [2], [3]]
        await batcher.close()

    asyncio.run(scenario())
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("request")}
    batches = [s for s in exporter.get_finished_spans() if s.name == "batch"]
    assert [b.attributes["batch.size"] for b in batches] == [1, 2]
    lone, shared = batches
    assert lone.parent.span_id == spans["request 1"].context.span_id
    assert shared.parent.span_id == spans["request 2"].context.span_id
    linked = {link.context.span_id for link in shared.links}
    assert linked == {spans["request 2"].context.span_id, spans["request 3"].context.span_id}
    assert all(s.context.trace_id == shared.parent.trace_id for s in [shared, spans["request 2"]])


#: Serves one REST inference through the standalone launcher, then prints the opentelemetry
#: modules the process has imported and stops itself.
PROBE = r"""
import json, os, signal, sys, threading, time, urllib.request
from bentos.circle_detector import standalone

port, png = sys.argv[1], open(sys.argv[2], "rb").read()
base = f"http://127.0.0.1:{port}/v2"

def probe():
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/health/ready", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                os._exit(3)
            time.sleep(0.1)
    size = 4 + len(png)
    header = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                      "parameters": {"binary_data_size": size}}]}).encode()
    body = header + len(png).to_bytes(4, "little") + png
    request = urllib.request.Request(
        f"{base}/models/probe/infer", data=body, method="POST",
        headers={"Inference-Header-Content-Length": str(len(header)),
                 "Content-Type": "application/octet-stream"})
    print("STATUS", urllib.request.urlopen(request, timeout=30).status, flush=True)
    print("OTEL", sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.exit(standalone.main(["--host", "127.0.0.1", "--port", port, "--grpc-port", "0",
                          "--model-name", "probe", "--log-level", "warning"]))
"""


def test_standalone_launcher_imports_no_opentelemetry_when_off(
    bentoml_home: Path, tmp_path: Path
) -> None:
    image = tmp_path / "c.png"
    image.write_bytes(circles_png(seed=1602))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(free_port()), str(image)],
        cwd=REPO_ROOT,
        env={**env, "BENTOML_HOME": str(bentoml_home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "STATUS 200" in done.stdout, done.stdout + done.stderr[-3000:]
    assert "OTEL []" in done.stdout, done.stdout


def test_a_failed_grpc_answer_marks_its_span_failed(monkeypatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    with tracing.server_span("V2 ModelInfer", lambda: [("traceparent", "junk")]):
        tracing.fail(3, "input 'image' is missing")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["rpc.grpc.status_code"] == 3
    assert span.parent is None  # a bad traceparent starts a new trace, it does not fail


def test_every_helper_is_a_no_op_when_off(monkeypatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)
    with tracing.server_span("x", lambda: pytest.fail("the carrier is read only when on")):
        tracing.fail(13, "internal")
        assert tracing.current() is None
        with tracing.batch_span([None], 1):
            pass
