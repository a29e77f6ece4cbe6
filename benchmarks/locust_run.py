"""Run one headless Locust load in a subprocess and read its CSV statistics.

A subprocess, not Locust's library API: Locust monkey-patches the process for gevent, which the
rest of the runner (subprocesses, httpx, torch) should not inherit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from math import nan
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
LOCUSTFILES = {
    "backend": BENCH_DIR / "locustfile_backend.py",
    "v2_http": BENCH_DIR / "locustfile_v2_http.py",
    "v2_grpc": BENCH_DIR / "locustfile_v2_grpc.py",
    "v2_overload": BENCH_DIR / "locustfile_v2_overload.py",
}


@dataclass
class LocustResult:
    """Locust's totals of one run (times in ms); its CSVs and JSON are at `csv_prefix`."""

    target: str
    users: int
    requests: int
    failures: int
    rps: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    csv_prefix: str

    def as_row(self) -> dict[str, object]:
        return asdict(self)


def percentile(times: Counter[int], fraction: float) -> float:
    """The smallest recorded time (Locust's rounded ms) with `fraction` of requests at or below.

    Computed here rather than with `locust.stats`: importing Locust monkey-patches the process.
    """
    total = sum(times.values())
    seen = 0
    for ms in sorted(times):
        seen += times[ms]
        if seen >= fraction * total:
            return float(ms)
    return nan


def read_stats(json_prefix: Path, target: str, users: int) -> LocustResult:
    """Totals over every request name in Locust's final `{json_prefix}.json` (times in ms).

    The JSON, not the CSV: Locust rewrites its CSVs once a second while running and not at exit,
    so a short run's CSV misses its last second; the JSON is written from the final statistics.
    """
    path = Path(f"{json_prefix}.json")
    if not path.exists():
        raise RuntimeError(f"{path} is missing: Locust did not finish")
    entries = json.loads(path.read_text())
    times: Counter[int] = Counter()
    for e in entries:
        times.update({int(k): v for k, v in e["response_times"].items()})
    requests = sum(e["num_requests"] for e in entries)
    started = min((e["start_time"] for e in entries), default=0.0)
    last = max((e["last_request_timestamp"] or 0.0 for e in entries), default=0.0)

    def pct(p: float) -> float:
        return percentile(times, p) if requests else nan

    return LocustResult(
        target=target,
        users=users,
        requests=requests,
        failures=sum(e["num_failures"] for e in entries),
        rps=requests / (last - started) if last > started else 0.0,
        mean_ms=sum(e["total_response_time"] for e in entries) / requests if requests else nan,
        p50_ms=pct(0.5),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
        max_ms=max((e["max_response_time"] for e in entries), default=nan),
        csv_prefix=str(json_prefix),
    )


def run_locust(
    target: str,
    host: str,
    users: int,
    seconds: float,
    csv_prefix: Path,
    env: Mapping[str, str] | None = None,
) -> LocustResult:
    """`locust --headless` of `LOCUSTFILES[target]` for `seconds`; raises if Locust itself fails."""
    csv_prefix.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-X", "faulthandler", "-m", "locust", "-f", str(LOCUSTFILES[target]),
        "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s",
        "--host", host, "--csv", str(csv_prefix), "--json-file", str(csv_prefix), "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "30", "--exit-code-on-error", "0",
    ]  # fmt: skip
    with subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=seconds + 120)
            hung = False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)  # faulthandler prints where it is stuck
            stdout, stderr = process.communicate()
            hung = True
    Path(f"{csv_prefix}.log").write_text(stdout + stderr)
    if hung:
        raise RuntimeError(f"locust {target} hung; its stacks:\n{stderr[-6000:]}")
    if process.returncode != 0:
        raise RuntimeError(f"locust {target} exited {process.returncode}:\n{stderr[-3000:]}")
    return read_stats(csv_prefix, target, users)
