"""Soak test of the V2 API: N inferences at C concurrent, failures, throughput and the
server's RSS over time (flat RSS is the point: memory returned after every request).

Against a running standalone Bento (`--url`, `--pid`), or one it starts itself (`--start`,
the single-process launcher on free ports of 127.0.0.1). Each call is a tritonclient HTTP
infer with a binary BYTES tensor: one small PNG from a fixed set of 16. RSS is sampled every
0.25 s (the server's PID given, or found as the launcher it started).

    python benchmarks/soak_v2.py --start [--requests 10000] [--concurrency 64] [--side 128]
    python benchmarks/soak_v2.py --url 127.0.0.1:3000 --pid 1234

Prints the failures (by error), requests/s, latency p50/p99 and RSS at start, max and end
(end: 2 s after the last answer). Exit status 1 if any call failed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
import tritonclient.http as httpclient
from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.bentos.circle_detector.images import circles_image, encode  # noqa: E402
from tests.servers import prepare_bentoml_home, running_bento  # noqa: E402

MODEL = "circle-detector"
MIB = 1024 * 1024


@dataclass
class RssSampler:
    """The process's RSS every `interval_s` on a thread."""

    pid: int
    interval_s: float = 0.25
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._process = psutil.Process(self.pid)
        self.samples.append(self._process.memory_info().rss)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(self._process.memory_info().rss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self._process.memory_info().rss)


def _images(side: int) -> list[bytes]:
    return [encode(circles_image(side, side, seed)) for seed in range(16)]


def soak(url: str, pid: int | None, requests: int, concurrency: int, side: int) -> int:
    images = _images(side)
    sampler = RssSampler(pid) if pid else None
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    local = threading.local()
    lock = threading.Lock()

    def client() -> httpclient.InferenceServerClient:
        if not hasattr(local, "client"):
            local.client = httpclient.InferenceServerClient(
                url, connection_timeout=60, network_timeout=120
            )
        return local.client

    def call(i: int) -> None:
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([images[i % len(images)]], dtype=object))
        started = time.perf_counter()
        try:
            result = client().infer(MODEL, [tensor])
            if result.as_numpy("num_detections") is None:
                raise RuntimeError("no num_detections in the answer")
        except Exception as exc:
            with lock:
                failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            return
        with lock:
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool, tqdm(total=requests, unit="req") as bar:
        for _ in pool.map(call, range(requests)):
            bar.update()
    seconds = time.perf_counter() - started
    time.sleep(2.0)
    if sampler:
        sampler.stop()
    print(f"{requests} calls at {concurrency} concurrent, {side}x{side} PNG, {seconds:.1f} s")
    print(f"failures: {sum(failures.values())}")
    for error, count in failures.most_common():
        print(f"  {count} x {error}")
    print(f"throughput: {len(latencies) / seconds:.1f} req/s")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"latency: p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    if sampler:
        s = sampler.samples
        print(
            f"server RSS: start {s[0] / MIB:.0f} MiB, max {max(s) / MIB:.0f} MiB, "
            f"end {s[-1] / MIB:.0f} MiB ({len(s)} samples)"
        )
    return 1 if failures else 0


@contextlib.contextmanager
def _started_server() -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = prepare_bentoml_home(Path(tmp) / "home")
        with running_bento(home, standalone=True) as server:
            yield server.http_url, server.process.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/soak_v2.py",
        description="N V2 infers at C concurrent against a standalone Bento; RSS sampled.",
    )
    parser.add_argument("--url", default="127.0.0.1:3000", help="host:port (no scheme)")
    parser.add_argument("--pid", type=int, default=None, help="server PID for RSS sampling")
    parser.add_argument("--start", action="store_true", help="start a standalone Bento itself")
    parser.add_argument("--requests", type=int, default=10_000, help="calls in all (10000)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (64)")
    parser.add_argument("--side", type=int, default=128, help="image side in pixels (128)")
    args = parser.parse_args(argv)
    if args.start:
        with _started_server() as (url, pid):
            return soak(url, pid, args.requests, args.concurrency, args.side)
    return soak(args.url, args.pid, args.requests, args.concurrency, args.side)


if __name__ == "__main__":
    sys.exit(main())
