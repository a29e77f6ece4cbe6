"""Which batcher the V2 paths should use, measured side by side in one process, alternating.

The same dataplane, model and images behind three batchers, without HTTP in between:

- `in-process`: the dataplane's own `AdaptiveBatcher` (whatever is queued when the network
  is free runs as the next batch);
- `bentoml-cork`: BentoML's own adaptive batcher, its `CorkDispatcher` (the dispatcher behind
  `@bentoml.api(batchable=True)`), called in process: BentoML's batching without the HTTP
  self-call the Bento used to make to reach it;
- `unbatched`: every image its own network call (`max_batch_size=1`).

Closed-loop asyncio clients call `DataPlane.infer` for `--seconds` at each of `--clients`.

    python benchmarks/batchers.py [--seconds 8] [--rounds 2] [--clients 1,16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.corpus import samples  # noqa: E402
from bentos.circle_detector.dataplane import DataPlane  # noqa: E402
from bentos.circle_detector.model.detector import CircleDetector  # noqa: E402
from bentos.circle_detector.protocol import InferInput, InferRequest, Overloaded  # noqa: E402
from bentos.circle_detector.runtime.circle import CircleRuntime  # noqa: E402

MODEL = "circle-detector"
MAX_BATCH, MAX_LATENCY_MS = 32, 30_000


class CorkBatcher:
    """BentoML's `CorkDispatcher` behind the dataplane's batcher interface."""

    def __init__(self, run_batch: Any) -> None:
        from bentoml._internal.marshal.dispatcher import CorkDispatcher

        executor = ThreadPoolExecutor(1, thread_name_prefix="network")

        async def batch(items: tuple) -> list:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, run_batch, list(items))

        def refused() -> Any:
            raise Overloaded("BentoML's dispatcher dropped the request")

        dispatcher = CorkDispatcher(
            MAX_LATENCY_MS, MAX_BATCH, fallback=refused, get_batch_size=lambda _: 1
        )
        self._call = dispatcher(batch)
        self._dispatcher = dispatcher
        self._executor = executor

    async def submit(self, items: list) -> list:
        return list(await asyncio.gather(*(self._call(item) for item in items)))

    async def close(self) -> None:
        self._dispatcher.shutdown()
        self._executor.shutdown(wait=False, cancel_futures=True)


def make_plane(name: str, detector: CircleDetector) -> DataPlane:
    size = 1 if name == "unbatched" else MAX_BATCH
    runtime = CircleRuntime(detector, max_batch_size=size, max_latency_ms=MAX_LATENCY_MS)
    if name == "bentoml-cork":
        runtime.batcher = CorkBatcher(detector.candidates)  # type: ignore[assignment]
    return DataPlane.serving(runtime)


async def closed_loop(plane: DataPlane, clients: int, seconds: float) -> dict[str, float]:
    files = [s.data for s in samples()]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            data = np.array([files[i % len(files)]], dtype=object)
            request = InferRequest(inputs=[InferInput("image", "BYTES", [1], data)])
            started = time.perf_counter()
            await plane.infer(MODEL, request)
            latencies.append(time.perf_counter() - started)
            i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": float(np.percentile(latencies, 95)) * 1000,
    }


async def run(name: str, detector: CircleDetector, clients: int, seconds: float) -> dict:
    plane = make_plane(name, detector)
    await plane.warm_up()
    await closed_loop(plane, clients, 1.0)  # BentoML's dispatcher trains its model first
    result = await closed_loop(plane, clients, seconds)
    await plane.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (8)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (2)")
    parser.add_argument("--clients", default="1,16", help="concurrent clients (1,16)")
    args = parser.parse_args(argv)
    detector = CircleDetector.load()
    names = ("in-process", "bentoml-cork", "unbatched")
    clients = [int(c) for c in args.clients.split(",")]
    results: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for n in clients:
            for name in names[r % 3 :] + names[: r % 3]:
                result = asyncio.run(run(name, detector, n, args.seconds))
                results.setdefault((name, n), []).append(result)
                figures = f"{result['rps']:5.1f} req/s p50 {result['p50_ms']:6.1f} ms"
                print(f"round {r + 1} {name:<13} {n:>2} clients: {figures}", flush=True)
    print("\nmedians over rounds")
    print(f"{'batcher':<13} {'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for (name, n), rows in results.items():
        med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
        print(f"{name:<13} {n:>7} {med['rps']:7.1f} {med['p50_ms']:8.1f} {med['p95_ms']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
