"""Abusive requests against a running Bento, with the worker's memory and liveness measured.

Each case sends what issue 12's table lists (64 MiB JSON BYTES, a 200 MiB JSON body, a gzip
bomb, 64 MiB of 1-byte BYTES through the binary extension, 4 x 60 MiB gRPC typed
`uint_contents`, 16 concurrent 4096 x 4096 JPEGs) and reports the worker's peak RSS (VmHWM,
reset before the case through /proc/PID/clear_refs), its RSS 10 s later against idle, and the
slowest `/v2/health/live` answer meanwhile. The memory tests assert on these; run as a
script it prints the table for the issue note:

    python -m tests.bentos.circle_detector.abuse [--bentoml] [--case NAME ...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import gzip
import json
import multiprocessing
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import psutil
import tritonclient.http as httpclient

from bentos.circle_detector.server import FULL_WARM_UP_LOG
from tests.bentos.circle_detector.images import circles_image, encode
from tests.servers import BentoServer, prepare_bentoml_home, running_bento

INFER = "/v2/models/circle-detector/infer"
MIB = 1024 * 1024
GIB = 1024 * MIB
#: Issue 12's targets.
PEAK_LIMIT = int(1.5 * GIB)
SETTLE_MARGIN = 100 * 1000 * 1000
SETTLE_S = 10.0


def worker_pid(server: BentoServer) -> int:
    """The process that serves requests: the launcher itself, or `bentoml serve`'s worker."""
    root = psutil.Process(server.process.pid)
    children = root.children(recursive=True)
    servers = [p for p in children if "_bentoml_impl.worker" in " ".join(p.cmdline())]
    return servers[0].pid if servers else root.pid


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss(pid: int) -> int:
    return status_kib(pid, "VmRSS") * 1024


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux: `5` to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Measure:
    case: str
    statuses: list[str]
    idle: int
    peak: int
    settled: int
    settle_s: float
    live_max_s: float
    seconds: float

    def row(self) -> str:
        return (
            f"{self.case:<26} peak {self.peak / MIB:7.0f} MiB (idle {self.idle / MIB:4.0f}) "
            f"after {self.settle_s:4.1f} s {self.settled / MIB:5.0f} MiB; live max "
            f"{self.live_max_s * 1000:5.1f} ms; {self.seconds:5.1f} s; {sorted(set(self.statuses))}"
        )


def _probe(base_url: str, slowest: Any, probes: Any, stop: Any) -> None:
    """The probe's loop, in its own process: the client's own work (building 60 MiB
    messages, serialising images) must not count as the server's latency."""
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = client.get("/v2/health/live").status_code == 200
            except httpx.HTTPError:
                ok = False
            took = time.perf_counter() - started if ok else 1e9
            slowest.value = max(slowest.value, took)
            probes.value += 1
            stop.wait(0.02)


class LiveProbe:
    """`GET /v2/health/live` every 20 ms from another process; the slowest answer (a failure
    counts as 1e9 s)."""

    def __init__(self, base_url: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._slowest = context.Value("d", 0.0)
        self._probes = context.Value("i", 0)
        self._stop = context.Event()
        self._process = context.Process(
            target=_probe, args=(base_url, self._slowest, self._probes, self._stop), daemon=True
        )

    @property
    def slowest(self) -> float:
        return float(self._slowest.value)

    def __enter__(self) -> LiveProbe:
        self._process.start()
        deadline = time.monotonic() + 30
        while self._probes.value == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # probing before the case starts
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():  # a probe stuck in a request: do not leave it behind
            self._process.terminate()
            self._process.join(5)


def measure(
    server: BentoServer,
    case: str,
    send: Callable[[BentoServer], list[str]],
    full_settle: bool = False,
) -> Measure:
    """Run one case: reset the peak, send while probing liveness, then wait until RSS is back
    within the margin of idle (at most 10 s), or the whole 10 s with `full_settle`."""
    pid = worker_pid(server)
    idle = rss(pid)
    reset_peak(pid)
    started = time.perf_counter()
    with LiveProbe(server.base_url) as probe:
        statuses = send(server)
        seconds = time.perf_counter() - started
        peak = status_kib(pid, "VmHWM") * 1024
        done = time.perf_counter()
        while time.perf_counter() - done < SETTLE_S and (
            full_settle or rss(pid) > idle + SETTLE_MARGIN
        ):
            time.sleep(0.1)
        settled, settle_s = rss(pid), time.perf_counter() - done
    return Measure(case, statuses, idle, peak, settled, settle_s, probe.slowest, seconds)


# -- the cases ----------------------------------------------------------------------------------


def _json_bytes_body(size: int) -> bytes:
    """A JSON infer body of about `size` bytes: one-character BYTES elements."""
    count = size // 4
    head = b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[%d],"data":[' % count
    return head + b'"a",' * (count - 1) + b'"a"]}]}'


def _post(server: BentoServer, content, headers=None) -> str:
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        response = client.post(INFER, content=content, headers=headers or {})
    return f"{response.status_code} {response.json()['error'][:50]}"


def _chunks(body: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def json_bytes_64mib(server: BentoServer) -> list[str]:
    """64 MiB JSON body of BYTES, Content-Length given, then the same chunked (no length)."""
    body = _json_bytes_body(64 * MIB)
    return [_post(server, body), _post(server, _chunks(body))]


def json_200mib(server: BentoServer) -> list[str]:
    return [_post(server, _chunks(_json_bytes_body(200 * MIB)))]


def gzip_bomb(server: BentoServer) -> list[str]:
    """~300 KB of gzip that inflates to a 200 MiB JSON body."""
    bomb = gzip.compress(_json_bytes_body(200 * MIB), 9)
    return [_post(server, bomb, {"Content-Encoding": "gzip"}) + f" ({len(bomb) // 1000} KB)"]


def binary_bytes_body(shape: list[int], raw: bytes) -> tuple[bytes, str]:
    """A binary-extension body: one BYTES input of `shape` whose data is `raw`; and the JSON
    header's length (the `Inference-Header-Content-Length` value)."""
    tensor = {
        "name": "image",
        "datatype": "BYTES",
        "shape": shape,
        "parameters": {"binary_data_size": len(raw)},
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + raw, str(len(header))


def binary_tiny_bytes(server: BentoServer) -> list[str]:
    """64 MiB of 1-byte BYTES elements through the binary extension: shape [N] as the data
    says, then shape [64] with the same data."""
    count = 64 * MIB // 5
    raw = (struct.pack("<I", 1) + b"a") * count
    out = []
    for shape in ([count], [64]):
        body, length = binary_bytes_body(shape, raw)
        out.append(_post(server, body, {"Inference-Header-Content-Length": length}))
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def typed_uint_message(shape: list[int]) -> bytes:
    """A serialised ModelInferRequest: UINT8 `image` of `shape` as packed `uint_contents` of
    ones, encoded by hand (building 60 M elements through protobuf takes the client ages)."""
    count = int(np.prod(shape))
    contents = _field(4, b"\x01" * count)  # InferTensorContents.uint_contents
    packed_shape = b"".join(_varint(d) for d in shape)
    tensor = (
        _field(1, b"image") + _field(2, b"UINT8") + _field(3, packed_shape) + _field(5, contents)
    )
    return _field(1, b"circle-detector") + _field(5, tensor)


def grpc_typed_4x(server: BentoServer) -> list[str]:
    """Four 60 MiB ModelInfer calls with typed `uint_contents`, then one over 64 MiB."""
    from tritonclient.grpc import service_pb2

    out = []
    options = [("grpc.max_send_message_length", 256 * MIB)]
    with grpc.insecure_channel(server.grpc_url, options=options) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=None,
            response_deserializer=service_pb2.ModelInferResponse.FromString,
        )
        for shape in [[15, 4096, 1024]] * 4 + [[16, 4096, 1025]]:
            message = typed_uint_message(shape)
            try:
                call(message, timeout=120)
                out.append("OK")
            except grpc.RpcError as exc:
                out.append(f"{exc.code().name} {exc.details()[:40]}")
            del message
    return out


def grpc_raw_4x(server: BentoServer) -> list[str]:
    """Four legitimate 48 MiB ModelInfer calls: a 4096 x 4096 RGB image as raw UINT8 through
    tritonclient's gRPC client (parsed and inferred: memory must come back after each)."""
    import tritonclient.grpc as grpcclient

    pixels = circles_image(4096, 4096, 5, channels=3)[None]
    out = []
    with grpcclient.InferenceServerClient(server.grpc_url) as client:
        for _ in range(4):
            tensor = grpcclient.InferInput("image", list(pixels.shape), "UINT8")
            tensor.set_data_from_numpy(pixels)
            result = client.infer("circle-detector", [tensor], client_timeout=300)
            out.append(f"OK {int(result.as_numpy('num_detections')[0])} circles")
    return out


def concurrent_jpegs(server: BentoServer, count: int = 16, side: int = 4096) -> list[str]:
    """`count` concurrent 4096 x 4096 JPEG infers with tritonclient's HTTP binary tensors."""
    jpeg = encode(circles_image(side, side, 7, channels=3), "JPEG")

    def one(_: int) -> str:
        with httpclient.InferenceServerClient(
            server.http_url, connection_timeout=300, network_timeout=300
        ) as client:
            tensor = httpclient.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([jpeg], dtype=object))
            try:
                result = client.infer("circle-detector", [tensor])
            except Exception as exc:  # reported, the test asserts all succeeded
                return f"error {str(exc)[:60]}"
            return f"OK {int(result.as_numpy('num_detections')[0])} circles"

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def idle(server: BentoServer) -> list[str]:
    """Nothing for 5 s: the liveness probe's noise floor on this machine."""
    time.sleep(5)
    return ["idle"]


CASES: dict[str, Callable[[BentoServer], list[str]]] = {
    "idle 5 s (baseline)": idle,
    "json 64 MiB BYTES": json_bytes_64mib,
    "json 200 MiB": json_200mib,
    "gzip bomb 200 MiB": gzip_bomb,
    "binary 64 MiB 1-byte": binary_tiny_bytes,
    "grpc 4x60 MiB typed": grpc_typed_4x,
    "grpc 4x48 MiB raw RGB": grpc_raw_4x,
    "16 x 4096^2 JPEG": concurrent_jpegs,
    "16 x 4096^2 JPEG again": concurrent_jpegs,
}


def wait_steady(server: BentoServer, timeout_s: float = 60) -> None:
    """Wait for the full-size warm-up, after which the idle RSS is the steady one: its log
    line (the launcher logs it; BentoML's worker hides INFO lines), or RSS unchanged within
    2 MB over 3 s."""
    pid = worker_pid(server)
    deadline = time.monotonic() + timeout_s
    last, since = rss(pid), time.monotonic()
    while FULL_WARM_UP_LOG not in server.log_tail(1 << 20):
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"no full-size warm-up after {timeout_s} s:\n{server.log_tail()}")
        current = rss(pid)
        if abs(current - last) > 2 * MIB:
            last, since = current, now
        elif now - since > 3:
            return
        time.sleep(0.1)


@contextlib.contextmanager
def server(bentoml: bool) -> Iterator[BentoServer]:
    with tempfile.TemporaryDirectory() as tmp:
        home = prepare_bentoml_home(Path(tmp) / "home")
        with running_bento(home, standalone=not bentoml) as running:
            wait_steady(running)
            yield running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bentos.circle_detector.abuse", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--bentoml", action="store_true", help="bentoml serve, not standalone")
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these")
    args = parser.parse_args(argv)
    with server(args.bentoml) as running:
        for name in args.case or CASES:
            print(measure(running, name, CASES[name], full_settle=True).row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
