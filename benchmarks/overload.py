"""Overload: the Bento under `--factor` x its sustainable load, side by side in one run.

1. Sustainable load: closed-loop Locust users for `--seconds`; its throughput is what the
   server sustains.
2. Overload: `--factor` x that rate offered open-loop (Locust's `constant_throughput`) with
   `/v2/health/live` polled throughout. The accepted requests' p99 is compared with the configured
   latency (`CIRCLE_DETECTOR_MAX_LATENCY_MS`), and the 429s Locust saw with the increase of
   `circle_detector_refusals_total` in `/metrics`.

    python benchmarks/overload.py               # starts a standalone Bento itself
    python benchmarks/overload.py --latency-ms 500 --factor 3 --seconds 30
    python benchmarks/overload.py --compare     # the same without admission by images in flight

Exit status 1 when a target is missed: accepted p99 over the latency, a failure other than a
429, refusals not all counted, or liveness over 100 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.locust_run import percentile, run_locust  # noqa: E402
from benchmarks.locustfile_v2_overload import ACCEPTED, REFUSED  # noqa: E402
from tests.servers import prepare_bentoml_home, running_bento  # noqa: E402

#: A MAX_IN_FLIGHT no load reaches: admission by images in flight off, the batcher's queue left.
NO_LIMIT = 1_000_000
_REFUSALS = re.compile(r'^circle_detector_refusals_total\{reason="(\w+)"\} (\S+)$', re.M)


def refusals(metrics_url: str) -> dict[str, float]:
    text = httpx.get(metrics_url, timeout=10).text
    return {reason: float(value) for reason, value in _REFUSALS.findall(text)}


def stage_totals(base_url: str) -> Counter[str]:
    """Cumulative (count, ns) per stage of the Triton statistics, summed over versions."""
    body = httpx.get(f"{base_url}/v2/models/circle-detector/stats", timeout=10).json()
    totals: Counter[str] = Counter()
    for model in body["model_stats"]:
        for stage, figures in model["inference_stats"].items():
            totals[f"{stage}.count"] += int(figures["count"])
            totals[f"{stage}.ns"] += int(figures["ns"])
    return totals


def stage_means_ms(before: Counter[str], after: Counter[str]) -> str:
    """Mean milliseconds per request of each stage between two `stage_totals`."""
    delta = after - before
    parts = []
    for stage in ("queue", "compute_input", "compute_infer", "compute_output"):
        if delta[f"{stage}.count"]:
            parts.append(f"{stage} {delta[f'{stage}.ns'] / delta[f'{stage}.count'] / 1e6:.0f}")
    return ", ".join(parts) + " ms"


def by_name(json_prefix: Path) -> dict[str, dict[str, float]]:
    """Per request name: count, failures, p50 and p99 (ms) from Locust's final JSON."""
    out = {}
    for entry in json.loads(Path(f"{json_prefix}.json").read_text()):
        times = Counter({int(k): v for k, v in entry["response_times"].items()})
        out[entry["name"]] = {
            "requests": entry["num_requests"],
            "failures": entry["num_failures"],
            "p50_ms": percentile(times, 0.5),
            "p99_ms": percentile(times, 0.99),
        }
    return out


class LivenessProbe:
    """Polls `/v2/health/live` every 100 ms in a thread; keeps the slowest answer."""

    def __init__(self, url: str) -> None:
        self.url, self.slowest_ms, self.failed = url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LivenessProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(0.1):
                started = time.perf_counter()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.slowest_ms = max(self.slowest_ms, (time.perf_counter() - started) * 1000)
                self.failed += not ok


def measure(args: argparse.Namespace, base_url: str, metrics_url: str, out: Path) -> int:
    env = {"BENCH_SIZES": str(args.side), "BENCH_REAL": "false"}
    sustained = run_locust(
        "v2_http", base_url, args.sustain_users, args.seconds, out / "sustain", env
    )
    offered = args.factor * sustained.rps
    # Enough users that the accepted third, each held up to the latency, leaves the rate offered.
    held_s = args.latency_ms / 1000 / args.factor
    users = min(args.max_users, max(32, math.ceil(offered * held_s * 1.5)))
    before, stages_before = refusals(metrics_url), stage_totals(base_url)
    with LivenessProbe(f"{base_url}/v2/health/live") as probe:
        run_locust(
            "v2_overload",
            base_url,
            users,
            args.seconds,
            out / "overload",
            {**env, "BENCH_RATE_PER_USER": f"{offered / users:.4f}"},
        )
    after, stages_after = refusals(metrics_url), stage_totals(base_url)
    counted = sum(after.values()) - sum(before.values())
    stats = by_name(out / "overload")
    none = {"requests": 0, "failures": 0, "p50_ms": math.nan, "p99_ms": math.nan}
    accepted, refused = stats.get(ACCEPTED, none), stats.get(REFUSED, none)
    failures = sum(s["failures"] for s in stats.values())
    sent = sum(s["requests"] for s in stats.values())
    rows = [
        ("sustainable (closed loop)", f"{sustained.rps:.1f} req/s, {args.sustain_users} users,"
         f" p50 {sustained.p50_ms:.0f} / p99 {sustained.p99_ms:.0f} ms,"
         f" {sustained.failures} failures"),
        ("offered", f"{offered:.1f} req/s ({args.factor:g}x) from {users} users; sent"
         f" {sent / args.seconds:.1f} req/s"),
        ("accepted", f"{accepted['requests'] / args.seconds:.1f} req/s, p50"
         f" {accepted['p50_ms']:.0f} / p99 {accepted['p99_ms']:.0f} ms"
         f" (configured latency {args.latency_ms} ms)"),
        ("accepted, server stages", stage_means_ms(stages_before, stages_after)),
        ("refused 429", f"{refused['requests']} ({refused['requests'] / args.seconds:.1f}/s)"),
        ("refusals in /metrics", f"+{counted:.0f} {dict(sorted(after.items()))}"),
        ("other failures", str(failures)),
        ("/v2/health/live", f"slowest {probe.slowest_ms:.0f} ms, {probe.failed} failed"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"{label:28} {value}")
    missed = [
        accepted["p99_ms"] > args.latency_ms and "accepted p99 over the configured latency",
        failures and "failures other than 429",
        counted != refused["requests"] and "refusals not all counted in /metrics",
        (probe.slowest_ms > 100 or probe.failed) and "liveness over 100 ms",
    ]
    for reason in filter(None, missed):
        print(f"missed: {reason}")
    return 1 if any(missed) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/overload.py",
        description="The Bento at its sustainable load, then at --factor x it (Locust).",
    )
    parser.add_argument("--latency-ms", type=int, default=1000, help="MAX_LATENCY_MS (1000)")
    parser.add_argument("--factor", type=float, default=3.0, help="overload factor (3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase (30)")
    parser.add_argument("--sustain-users", type=int, default=16, help="closed-loop users (16)")
    parser.add_argument("--max-users", type=int, default=400, help="most overload users (400)")
    parser.add_argument("--side", type=int, default=256, help="image side in pixels (256)")
    parser.add_argument(
        "--output-dir", type=Path, default=Path("benchmarks/results/overload"), help="Locust CSVs"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run twice, on fresh servers: admission by images in flight off"
        f" (CIRCLE_DETECTOR_MAX_IN_FLIGHT={NO_LIMIT}), then on (derived, the default)",
    )
    args = parser.parse_args(argv)
    cases = [("in-flight admission off", NO_LIMIT), ("in-flight admission on", 0)]
    status = 0
    for label, limit in cases if args.compare else cases[1:]:
        print(f"== {label}")
        env = {
            "CIRCLE_DETECTOR_MAX_LATENCY_MS": str(args.latency_ms),
            "CIRCLE_DETECTOR_MAX_IN_FLIGHT": str(limit),
        }
        with tempfile.TemporaryDirectory() as tmp:
            home = prepare_bentoml_home(Path(tmp) / "home")
            with running_bento(home, env=env, standalone=True) as server:
                out = args.output_dir / ("off" if limit else "on")
                status |= measure(args, server.base_url, server.metrics_url, out)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
