"""One upload, one trace, across two real processes: backend request -> client call -> the
Bento's V2 request -> the batch that ran the image, for the HTTP and the gRPC model protocol.

The backend (`python -m backend`, MODE=real) and the Bento (the standalone launcher) export by
OTLP/HTTP to a small receiver on 127.0.0.1 that parses `ExportTraceServiceRequest`s. With
tracing off (the default, or `OTEL_SDK_DISABLED=true` even with an endpoint set) nothing is
exported.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.backend.helpers import circles_png, running_backend, upload
from tests.servers import BentoServer, running_bento

#: Export within 0.1 s of a span's end (the SDK's default waits 5 s).
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BSP_EXPORT_TIMEOUT": "5000"}
UPLOAD_ROUTE = "POST /api/v1/images/"


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    links: tuple[str, ...]
    attributes: dict = field(hash=False, compare=False)


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint (`POST /v1/traces`, protobuf) that keeps every span."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.spans: list[Span] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    span = Span(
                        service=resource.get("service.name", ""),
                        name=s.name,
                        kind=s.kind,
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        links=tuple(link.span_id.hex() for link in s.links),
                        attributes={a.key: a.value for a in s.attributes},
                    )
                    with self.lock:
                        self.spans.append(span)

    def snapshot(self) -> list[Span]:
        with self.lock:
            return list(self.spans)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        self.server.add(ExportTraceServiceRequest.FromString(body))
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced_bento(bentoml_home: Path, receiver: Receiver) -> Iterator[BentoServer]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **FAST_EXPORT}
    with running_bento(bentoml_home, env=env, standalone=True) as server:
        yield server


def _chain(spans: list[Span], upload_trace: str) -> dict[str, Span] | None:
    """The upload's server, client, V2 and batch spans, if all have arrived."""
    by_id = {s.span_id: s for s in spans}
    for batch in (s for s in spans if s.name == "batch" and s.trace_id == upload_trace):
        v2 = by_id.get(batch.parent_id)
        client = by_id.get(v2.parent_id) if v2 else None
        server = by_id.get(client.parent_id) if client else None
        if server is not None:
            return {"server": server, "client": client, "v2": v2, "batch": batch}
    return None


def _wait_for_chain(receiver: Receiver, since: int, timeout_s: float = 15.0) -> dict[str, Span]:
    deadline = time.monotonic() + timeout_s
    while True:
        spans = receiver.snapshot()[since:]
        uploads = [s for s in spans if s.name == UPLOAD_ROUTE and s.kind == 2]  # SERVER
        if uploads:
            chain = _chain(spans, uploads[-1].trace_id)
            if chain is not None:
                return chain
        if time.monotonic() > deadline:
            names = sorted({(s.service, s.name) for s in spans})
            raise AssertionError(f"no full chain of the upload's spans arrived; got {names}")
        time.sleep(0.1)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_one_upload_is_one_trace_down_to_its_batch(
    protocol: str, traced_bento: BentoServer, receiver: Receiver, tmp_path: Path
) -> None:
    url = traced_bento.grpc_url if protocol == "grpc" else traced_bento.http_url
    env = {
        "MODE": "real",
        "MODEL_SERVER_URL": url,
        "MODEL_PROTOCOL": protocol,
        "DATABASE_URL": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        **FAST_EXPORT,
    }
    with running_backend(tmp_path / "data", env) as backend, backend.client() as c:
        since = len(receiver.snapshot())
        response = upload(c, circles_png(seed=1600))
        assert response.status_code == 201, response.text
        chain = _wait_for_chain(receiver, since)
    server, client, v2, batch = chain["server"], chain["client"], chain["v2"], chain["batch"]
    assert len({s.trace_id for s in chain.values()}) == 1
    assert server.service == "circle-detector-backend" and server.kind == 2  # SERVER
    assert client.service == "circle-detector-backend" and client.kind == 3  # CLIENT
    assert client.name == "ModelInfer"
    assert client.attributes["rpc.system"].string_value == protocol
    assert v2.service == "circle-detector" and v2.kind == 2 and v2.name == "V2 ModelInfer"
    assert batch.service == "circle-detector" and batch.kind == 1  # INTERNAL
    assert v2.span_id in batch.links
    assert batch.attributes["batch.size"].int_value >= 1


def test_disabled_sdk_exports_nothing_even_with_an_endpoint(
    bentoml_home: Path, receiver: Receiver, tmp_path: Path
) -> None:
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SDK_DISABLED": "true"}
    since = len(receiver.snapshot())
    with running_bento(bentoml_home, env={**off, **FAST_EXPORT}, standalone=True) as bento:
        env = {"MODE": "real", "MODEL_SERVER_URL": bento.http_url, "DATABASE_URL": "", **off}
        with running_backend(tmp_path / "data", {**env, **FAST_EXPORT}) as backend:
            with backend.client() as c:
                assert upload(c, circles_png(seed=1601)).status_code == 201
            time.sleep(0.5)  # five export periods
    assert receiver.snapshot()[since:] == []
