"""Time to ready of the backend: process start to `/health` (live) and `/health/ready` (200).

Each run starts `python -m backend` on a fresh SQLite database in a new data directory, so the
migrations run as on a first start; repeated `--runs` times, min/median/max printed.
`/health/ready` also checks the model server: without `--model-server-url` the backend runs in
`MODE=dummy` (no model server), with it in `MODE=real` against that server.

    python benchmarks/backend_ready.py [--runs 5] [--model-server-url 127.0.0.1:3000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.servers import free_port  # noqa: E402


def time_to_ready(
    data_dir: Path, model_server_url: str | None, timeout_s: float = 60.0
) -> dict[str, float]:
    """Seconds from spawning the backend to its first 200 on /health and on /health/ready."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": "",
        "LOG_LEVEL": "warning",
        "MODE": "real" if model_server_url else "dummy",
        "MODEL_SERVER_URL": model_server_url or "",
    }
    env.pop("PORT", None)
    command = [sys.executable, "-m", "backend", "--host", "127.0.0.1", "--port", str(port)]
    found: dict[str, float] = {}
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            while len(found) < 2:
                if time.perf_counter() - started > timeout_s:
                    raise TimeoutError(f"backend not ready within {timeout_s} s: {found}")
                if process.poll() is not None:
                    raise RuntimeError(f"backend exited with {process.returncode}")
                for key, path in (("live_s", "/health"), ("ready_s", "/health/ready")):
                    if key in found:
                        continue
                    try:
                        if client.get(path).status_code == 200:
                            found[key] = time.perf_counter() - started
                    except httpx.HTTPError:
                        break
                time.sleep(0.02)
        return found
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def measure(runs: int, model_server_url: str | None) -> dict[str, list[float]]:
    """`runs` cold starts, each on a fresh data directory."""
    out: dict[str, list[float]] = {"live_s": [], "ready_s": []}
    with tempfile.TemporaryDirectory(prefix="backend-ready-") as tmp:
        for run in range(runs):
            times = time_to_ready(Path(tmp) / f"run{run}", model_server_url)
            for key, value in times.items():
                out[key].append(value)
    return out


def describe(values: list[float]) -> str:
    return (
        f"min {min(values):.2f} s, median {statistics.median(values):.2f} s, "
        f"max {max(values):.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts to time (default 5)")
    parser.add_argument(
        "--model-server-url", default=None, help="host:port of a V2 server (default: MODE=dummy)"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    result = measure(args.runs, args.model_server_url)
    print(f"backend live  ({args.runs} starts): {describe(result['live_s'])}")
    print(f"backend ready ({args.runs} starts): {describe(result['ready_s'])}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
