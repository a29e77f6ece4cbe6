"""Run one headless Locust load in a subprocess and read its CSV statistics.

A subprocess, not Locust's library API: Locust monkey-patches the process for gevent, which the
rest of the runner (subprocesses, httpx, torch) should not inherit.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
LOCUSTFILES = {
    "backend": BENCH_DIR / "locustfile_backend.py",
    "v2_http": BENCH_DIR / "locustfile_v2_http.py",
    "v2_grpc": BENCH_DIR / "locustfile_v2_grpc.py",
}


@dataclass
class LocustResult:
    """The aggregated row of Locust's `_stats.csv` (times in ms)."""

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


def read_stats(csv_prefix: Path, target: str, users: int) -> LocustResult:
    """Parse the `Aggregated` row Locust writes to `{csv_prefix}_stats.csv`."""
    with open(f"{csv_prefix}_stats.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    if not rows:
        raise RuntimeError(f"{csv_prefix}_stats.csv has no Aggregated row")
    r = rows[0]

    def num(key: str) -> float:
        value = r.get(key, "")
        return float(value) if value not in ("", "N/A") else float("nan")

    return LocustResult(
        target=target,
        users=users,
        requests=int(r["Request Count"]),
        failures=int(r["Failure Count"]),
        rps=num("Requests/s"),
        mean_ms=num("Average Response Time"),
        p50_ms=num("50%"),
        p95_ms=num("95%"),
        p99_ms=num("99%"),
        max_ms=num("Max Response Time"),
        csv_prefix=str(csv_prefix),
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
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILES[target]), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s",
        "--host", host, "--csv", str(csv_prefix), "--only-summary",
        "--loglevel", "WARNING", "--stop-timeout", "30", "--exit-code-on-error", "0",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    Path(f"{csv_prefix}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"locust {target} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return read_stats(csv_prefix, target, users)
