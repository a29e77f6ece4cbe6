"""A small real V2 "model server" on 127.0.0.1 that answers what a test chooses.

It speaks enough of the Open Inference Protocol's REST for tritonclient: model readiness,
metadata and infer (a JSON answer with one circle). `mode` picks the answer for every call;
`bad` lists byte strings that, when found in an infer body, get `bad_status` instead (one image
the model always fails on). Every request is recorded as (method, path, status).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import free_port

MODEL = "circle-detector"
ONE_CIRCLE = {
    "model_name": MODEL,
    "model_version": "7",
    "outputs": [
        {"name": "num_detections", "datatype": "INT32", "shape": [1], "data": [1]},
        {"name": "boxes", "datatype": "FP32", "shape": [1, 1, 4], "data": [10, 10, 30, 30]},
        {"name": "centers", "datatype": "FP32", "shape": [1, 1, 2], "data": [20, 20]},
        {"name": "radii", "datatype": "FP32", "shape": [1, 1], "data": [10]},
        {"name": "scores", "datatype": "FP32", "shape": [1, 1], "data": [0.9]},
    ],
}


@dataclass
class FakeModel:
    """State shared with the handler threads; change `mode` and `bad` at any time."""

    url: str = ""
    mode: int = 200  # status of every answer (200: a normal V2 server)
    headers: dict[str, str] = field(default_factory=dict)  # extra headers on error answers
    bad: list[bytes] = field(default_factory=list)
    bad_status: int = 500
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def infers(self, status: int | None = None) -> int:
        """Infer calls seen (of `status`, when given)."""
        with self.lock:
            return sum(
                1
                for _, path, code in self.requests
                if path.endswith("/infer") and (status is None or code == status)
            )

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict]:
        status = self.mode
        if status == 200 and path.endswith("/infer") and any(b in body for b in self.bad):
            status = self.bad_status
        if status == 200 and MODEL not in path and path.startswith("/v2/models/"):
            status = 404
        with self.lock:
            self.requests.append((method, path, status))
        if status != 200:
            return status, {"error": f"fake model server answers {status}"}
        if path.endswith("/infer"):
            return 200, ONE_CIRCLE
        if path.endswith("/ready"):
            return 200, {}
        return 200, {"name": MODEL, "versions": ["7"], "platform": "fake"}


def _handler(state: FakeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _reply(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = state.answer(method, self.path.split("?")[0], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status != 200:
                for name, value in state.headers.items():
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

    return Handler


@contextmanager
def fake_model(**state: object) -> Iterator[FakeModel]:
    """Serve a FakeModel on a free port of 127.0.0.1 in a thread."""
    model = FakeModel(**state)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(model))
    server.daemon_threads = True
    model.url = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
