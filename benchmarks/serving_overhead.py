"""Serving overhead of the Bento: where a lone request's time goes, and V2 REST throughput at
saturation against the raw in-process model.

Measured side by side in one run, on the same machine and the same images:

1. a real Bento (`bentoml serve`, or `--standalone`) is started on free ports;
2. latency (p50/p99) at 1, 8 and 32 concurrent tritonclient aio clients, binary tensors;
3. a lone request taken apart: its latency at the client, and over the same requests the
   server's own figures from `/metrics` (`circle_detector_inference_seconds`, and
   `circle_detector_stage_seconds` for preparation, queue, network and finish); what the stages
   leave of the inference is thread hops and the codec, what the inference leaves of the
   client's latency is HTTP (both ends and loopback);
4. saturation throughput at `--saturation` clients; the batch-size histogram of that phase is
   read from `/metrics` (`circle_detector_batch_size`);
5. the raw in-process model (`decode_image` + `CircleDetector.detect_arrays`, one thread) on the
   same encoded images at the server's mean batch size; the ratio server / raw is printed.

    python benchmarks/serving_overhead.py [--seconds 10] [--size 512] [--json-out FILE]

Numbers depend on what else runs on the machine: read the ratio, which is measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.servers import prepare_bentoml_home, running_bento  # noqa: E402

MODEL = "circle-detector"
_BUCKET = re.compile(r"^circle_detector_batch_size_(bucket|sum|count)(?:\{([^}]*)\})? (\S+)$")


def make_images(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Grey images with a few dark rings, like the detector's domain (drawn, not downloaded)."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        img = np.full((size, size), 225, dtype=np.uint8)
        for _ in range(5):
            r = int(rng.integers(size // 20, size // 6))
            c = (int(rng.integers(r, size - r)), int(rng.integers(r, size - r)))
            cv2.circle(img, c, r, 30, int(rng.integers(1, 5)))
        noise = rng.normal(0, 5, img.shape)
        images.append(np.clip(img + noise, 0, 255).astype(np.uint8))
    return images


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


def histogram(metrics_text: str) -> dict[str, Any]:
    """The adaptive batcher's batch-size histogram: cumulative buckets, sum and count."""
    out: dict[str, Any] = {"buckets": {}, "sum": 0.0, "count": 0.0}
    for line in metrics_text.splitlines():
        m = _BUCKET.match(line)
        if not m:
            continue
        value = float(m[3])
        if m[1] == "bucket":
            le = float(re.search(r'le="([^"]+)"', m[2] or "")[1])
            out["buckets"][le] = out["buckets"].get(le, 0.0) + value
        else:
            out[m[1]] += value
    return out


def histogram_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    buckets = {k: v - before["buckets"].get(k, 0.0) for k, v in after["buckets"].items()}
    return {
        "buckets": buckets,
        "sum": after["sum"] - before["sum"],
        "count": after["count"] - before["count"],
    }


async def load(url: str, files: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` closed-loop tritonclient aio clients, one image per request, binary tensors."""
    import tritonclient.http.aio as http_aio

    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client_loop(client: Any, k: int) -> None:
        nonlocal failures
        i = k
        while time.perf_counter() < deadline:
            tensor = http_aio.InferInput("image", [1], "BYTES")
            tensor.set_data_from_numpy(np.array([files[i % len(files)]], dtype=object))
            started = time.perf_counter()
            try:
                result = await client.infer(MODEL, [tensor])
                result.as_numpy("num_detections")
                latencies.append(time.perf_counter() - started)
            except Exception:
                failures += 1
            i += clients

    async with http_aio.InferenceServerClient(url, conn_limit=clients) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, k) for k in range(clients)))
        elapsed = time.perf_counter() - started
    lat_ms = sorted(x * 1000 for x in latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "failures": failures,
        "throughput_rps": len(latencies) / elapsed,
        "p50_ms": lat_ms[len(lat_ms) // 2] if lat_ms else None,
        "p99_ms": lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))] if lat_ms else None,
    }


class RawModel:
    """The model in-process, the plain way: decode + `detect_arrays`, one caller."""

    def __init__(self, threads: int = 0) -> None:
        from bentos.circle_detector.model.detector import CircleDetector
        from bentos.circle_detector.model.imageio import decode_image

        self.decode = decode_image
        self.detector = CircleDetector.load(threads=threads)

    def throughput(self, files: list[bytes], batch: int, seconds: float) -> float:
        """Images/s at a fixed batch size."""
        self.detector.detect_arrays([self.decode(files[0])])  # warm-up
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            chunk = [files[(done + k) % len(files)] for k in range(batch)]
            self.detector.detect_arrays([self.decode(f) for f in chunk])
            done += batch
        return done / (time.perf_counter() - started)


_TIMES = re.compile(
    r'^circle_detector_(stage|inference)_seconds_(sum|count)\{(?:stage|model)="([^"]+)"\} (\S+)$'
)


def server_times(metrics_text: str) -> dict[str, list[float]]:
    """[sum of seconds, count] per stage, and for whole inferences (`inference`), from /metrics."""
    out: dict[str, list[float]] = {}
    for line in metrics_text.splitlines():
        m = _TIMES.match(line)
        if m:
            key = m[3] if m[1] == "stage" else "inference"
            out.setdefault(key, [0.0, 0.0])[m[2] == "count"] += float(m[4])
    return out


def lone_request(url: str, metrics_url: str, file: bytes, repeats: int) -> dict[str, float]:
    """One image, one request at a time: the client's latency and, from the server's own
    /metrics over the same requests, its inference time and each stage's (mean ms)."""
    import tritonclient.http as httpclient

    from bentos.circle_detector.runtime.circle import OUTPUTS

    with httpclient.InferenceServerClient(url) as client:
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([file], dtype=object))
        outputs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in OUTPUTS]
        client.infer(MODEL, [tensor], outputs=outputs)
        before = server_times(httpx.get(metrics_url).text)
        started = time.perf_counter()
        for _ in range(repeats):
            client.infer(MODEL, [tensor], outputs=outputs)
        client_ms = (time.perf_counter() - started) / repeats * 1000
    after = server_times(httpx.get(metrics_url).text)
    means = {}
    for key, (total, count) in after.items():
        old_total, old_count = before.get(key, [0.0, 0.0])
        if count > old_count:
            means[key] = (total - old_total) / (count - old_count) * 1000
    stages = {k: means.get(k, 0.0) for k in ("prepare", "queue", "network", "finish")}
    return {
        "client-observed": client_ms,
        "server inference": means["inference"],
        **{f"  {k}": v for k, v in stages.items()},
        "  thread hops, codec": means["inference"] - sum(stages.values()),
        "HTTP, both ends": client_ms - means["inference"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--saturation", type=int, default=32, help="clients at saturation (32)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating server/raw rounds (default 3)"
    )
    parser.add_argument(
        "--standalone", action="store_true", help="single-process launcher, not bentoml serve"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="server environment"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)

    files = [png(i) for i in make_images(16, args.size)]
    report: dict[str, Any] = {
        "image": f"{args.size}x{args.size} PNG, {statistics.fmean(map(len, files)):.0f} bytes",
        "server": "standalone" if args.standalone else "bentoml serve",
    }
    with tempfile.TemporaryDirectory(prefix="bench-bento-") as tmp:
        home = prepare_bentoml_home(Path(tmp) / "home")
        env = dict(item.split("=", 1) for item in args.env)
        with running_bento(home, env=env, standalone=args.standalone) as server:
            report["latency"] = []
            for clients in (1, 8, 32):
                result = asyncio.run(load(server.http_url, files, clients, args.seconds))
                report["latency"].append(result)
                print(f"latency  {clients:>2} clients: {json.dumps(result)}", flush=True)
            # Saturation and the raw model alternate, so both see the same machine load.
            raw_model = RawModel()
            report["rounds"] = []
            for _ in range(args.rounds):
                before = histogram(httpx.get(server.metrics_url).text)
                sat = asyncio.run(load(server.http_url, files, args.saturation, args.seconds))
                batches = histogram_delta(before, histogram(httpx.get(server.metrics_url).text))
                mean_batch = batches["sum"] / batches["count"] if batches["count"] else 1.0
                raw = raw_model.throughput(files, max(1, round(mean_batch)), args.seconds)
                report["rounds"].append(
                    {
                        "server_images_per_s": sat["throughput_rps"],
                        "failures": sat["failures"],
                        "batch_histogram": batches,
                        "mean_batch_size": mean_batch,
                        "raw_images_per_s": raw,
                        "ratio": sat["throughput_rps"] / raw,
                    }
                )
                print(f"round: {json.dumps(report['rounds'][-1], default=str)}", flush=True)
            report["lone_request_ms"] = lone_request(
                server.http_url, server.metrics_url, files[0], 40
            )
    rounds = report["rounds"]
    report["ratio_server_over_raw_median"] = statistics.median(r["ratio"] for r in rounds)

    print(f"\nsaturation ({args.saturation} clients), per round: "
          f"{[round(r['server_images_per_s'], 1) for r in rounds]} images/s, "
          f"{sum(r['failures'] for r in rounds)} failures")  # fmt: skip
    last = sorted(rounds[-1]["batch_histogram"]["buckets"].items())
    print(f"mean batch size per round: {[round(r['mean_batch_size'], 1) for r in rounds]}; "
          f"cumulative histogram of the last: { {k: int(v) for k, v in last} }")  # fmt: skip
    print(f"raw in-process at those batch sizes: "
          f"{[round(r['raw_images_per_s'], 1) for r in rounds]} images/s")  # fmt: skip
    print(f"ratio server / raw per round: {[round(r['ratio'], 2) for r in rounds]}; "
          f"median {report['ratio_server_over_raw_median']:.2f} (target >= 0.85)")  # fmt: skip
    print("\na lone request, mean ms (hops and HTTP by difference):")
    for name, ms in report["lone_request_ms"].items():
        print(f"  {name:<26} {ms:7.2f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
