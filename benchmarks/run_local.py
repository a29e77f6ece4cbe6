"""The local benchmark suite in one command: servers started here, loads headless, results written.

Starts two real Bentos (`bentoml serve`: adaptive batching on, and off) and the backend
(`python -m backend`, SQLite, `MODE=real` against the batching Bento), then, side by side in one
run so that every ratio sees the same machine load:

1. curves: Locust V2 HTTP and backend uploads at each of `--users`, alternating;
2. rounds (`--rounds`): V2 HTTP at the highest user count on the batching Bento, then on the
   non-batching one, then the raw in-process model (decode + `CircleDetector.detect_arrays`) at
   the batch size the server reached and at batch 1: the serving overhead and batching ratios;
3. V2 gRPC at the highest user count (against V2 HTTP of the rounds);
4. cold start of the Bento (`bentoml serve` to first answered inference) and the backend's time
   to ready, `--cold-runs` times each.

Writes into `--out`: `results.json`, `summary.md`, CSVs (`curves.csv`, `rounds.csv`,
`cold_start.csv`, `batch_histogram.csv`), plots (`latency.png`, `throughput.png`,
`batch_histogram.png`), Locust's own CSVs and logs under `locust/`, server logs under `logs/`.
With the defaults it takes about 5 minutes on 2 cores.

    python benchmarks/run_local.py [--out benchmarks/results/local] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.backend_ready import measure as backend_ready  # noqa: E402
from benchmarks.cold_start_bento import _png, _v2_request, time_to_first_answer  # noqa: E402
from benchmarks.locust_run import run_locust  # noqa: E402
from benchmarks.serving_overhead import RawModel, histogram, histogram_delta  # noqa: E402
from tests.backend.helpers import start_backend, stop_backend  # noqa: E402
from tests.servers import (  # noqa: E402
    BentoServer,
    free_port,
    prepare_bentoml_home,
    serve_command,
    start_bento,
    stop_bento,
)


def batching_off_size() -> int:
    """1 (no batching) if the Bento's settings allow it, else their smallest batch size."""
    from bentos.circle_detector.settings import SettingsError, load_settings

    try:
        load_settings({"CIRCLE_DETECTOR_MAX_BATCH_SIZE": "1"})
        return 1
    except SettingsError:
        return 2


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import bentoml
    import onnxruntime

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "bentoml": bentoml.__version__,
        "git_commit": commit,
    }


def raw_best(
    raws: dict[int, RawModel], files: list[bytes], batch: int, seconds: float
) -> tuple[float, int]:
    """The raw model's images/s with each of its thread counts, the fastest and its threads.

    On a loaded 2-core machine, 2 intra-op threads can be many times slower than 1 (each
    parallel region waits for a core); the baseline should be the model at its best.
    """
    return max((raw.throughput(files, batch, seconds), t) for t, raw in raws.items())


class Suite:
    """The servers and the measurements of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out: Path = args.out
        self.results: dict[str, Any] = {}
        self.bench_env = {"BENCH_SIZES": args.sizes, "BENCH_HOST_HEADER": ""}

    def locust(self, target: str, host: str, users: int, label: str) -> dict[str, Any]:
        prefix = self.out / "locust" / f"{label}-{target}-u{users}"
        result = run_locust(target, host, users, self.args.seconds, prefix, self.bench_env)
        row = result.as_row()
        print(
            f"  {label:<10} {target:<8} {users:>3} users: {row['rps']:6.1f} req/s, "
            f"p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms, "
            f"{row['failures']} failures / {row['requests']}",
            flush=True,
        )
        return row

    def v2_with_histogram(self, bento: BentoServer, users: int, label: str) -> dict[str, Any]:
        before = histogram(httpx.get(bento.metrics_url, timeout=10).text)
        row = self.locust("v2_http", f"http://{bento.http_url}", users, label)
        time.sleep(0.5)  # let the worker's metrics reach the supervisor's /metrics
        after = histogram(httpx.get(bento.metrics_url, timeout=10).text)
        delta = histogram_delta(before, after)
        row["batch_histogram"] = delta
        row["mean_batch"] = delta["sum"] / delta["count"] if delta["count"] else float("nan")
        return row

    def run(self) -> dict[str, Any]:
        a = self.args
        self.results["meta"] = {
            "command": " ".join(shlex.quote(x) for x in [sys.executable, *sys.argv] if x)
            + (f" (niceness {os.nice(0)})" if os.nice(0) else ""),
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "settings": {k: str(v) for k, v in vars(a).items()},
        }
        off = batching_off_size()
        self.results["batching_off_max_batch_size"] = off
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="bench-local-"))
        # One BentoML home per Bento: a server clears its home's Prometheus directory at start,
        # which would blank the /metrics of another server sharing it.
        home = prepare_bentoml_home(work / "bentoml-home-on")
        home_off = prepare_bentoml_home(work / "bentoml-home-off")
        print("starting the Bentos (batching on and off) and the backend ...", flush=True)
        on = start_bento(home, log_path=logs / "bento-batching-on.log")
        off_server = start_bento(
            home_off,
            env={"CIRCLE_DETECTOR_MAX_BATCH_SIZE": str(off)},
            log_path=logs / "bento-batching-off.log",
        )
        backend = None
        try:
            backend = start_backend(
                work / "backend-data",
                {
                    "MODE": "real",
                    "MODEL_SERVER_URL": on.http_url,
                    "DATABASE_URL": "",
                    "MODEL_RETRY_DEADLINE_S": "30",
                    "MODEL_TIMEOUT_S": "120",
                },
            )
            self.results["startup_s"] = {"bento (ready)": on.startup_s}
            self.measure_load(on, off_server, backend.url)
            stop_bento(off_server)
            self.measure_cold_start(home_off, on)
        finally:
            if backend is not None:
                stop_backend(backend)
                shutil.copy(backend.log_path, logs / "backend.log")
            stop_bento(off_server)
            stop_bento(on)
            shutil.rmtree(work, ignore_errors=True)
        self.results["meta"]["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.results["meta"]["machine"]["load_average_at_end"] = os.getloadavg()
        return self.results

    def measure_load(self, on: BentoServer, off: BentoServer, backend_url: str) -> None:
        a = self.args
        top = max(a.users)
        print("curves: V2 HTTP and backend uploads by users", flush=True)
        curves = []
        for users in a.users:
            curves.append(self.v2_with_histogram(on, users, "curve"))
            curves.append(self.locust("backend", backend_url, users, "curve"))
        self.results["curves"] = curves

        print(f"rounds at {top} users: batching on, off, raw in-process model", flush=True)
        from benchmarks.corpus import samples
        from bentos.circle_detector.model.runtimes import default_threads

        files = [s.data for s in samples(tuple(int(x) for x in a.sizes.split(",")))]
        raws = {t: RawModel(t) for t in dict.fromkeys((default_threads(), 1))}
        for raw in raws.values():  # the server has seen every shape before it is timed
            for data in files:
                raw.detector.detect_arrays([raw.decode(data)])
        rounds = []
        for k in range(a.rounds):
            row_on = self.v2_with_histogram(on, top, f"round{k}-on")
            row_off = self.v2_with_histogram(off, top, f"round{k}-off")
            mean = row_on["mean_batch"]
            batch = max(1, round(mean)) if math.isfinite(mean) else 1
            raw_rps, threads = raw_best(raws, files, batch, a.seconds / 2)
            raw_rps1 = raws[threads].throughput(files, 1, a.seconds / 2)
            print(
                f"  raw model ({threads} threads, the faster): {raw_rps:.1f} images/s at "
                f"batch {batch}, {raw_rps1:.1f} at batch 1",
                flush=True,
            )
            rounds.append(
                {
                    "on": row_on,
                    "off": row_off,
                    "raw_batch": batch,
                    "raw_images_per_s": raw_rps,
                    "raw_images_per_s_batch1": raw_rps1,
                    "raw_threads": threads,
                }
            )
        self.results["rounds"] = rounds

        print(f"gRPC at {top} users", flush=True)
        self.results["grpc"] = self.locust("v2_grpc", f"http://{on.grpc_url}", top, "grpc")

    def measure_cold_start(self, home: Path, on: BentoServer) -> None:
        a = self.args
        print(f"cold start of the Bento, {a.cold_runs} runs", flush=True)
        body, headers = _v2_request(_png())
        env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
        bento_s = []
        for _ in range(a.cold_runs):
            port = free_port()
            run_env = {**env, "CIRCLE_DETECTOR_GRPC_PORT": str(free_port())}
            url = f"http://127.0.0.1:{port}/v2/models/circle-detector/infer"
            seconds = time_to_first_answer(
                serve_command(port), REPO_ROOT, run_env, url, body, headers, timeout_s=120
            )
            bento_s.append(seconds)
            print(f"  bentoml serve -> first answer: {seconds:.2f} s", flush=True)
        print(f"backend time to ready, {a.cold_runs} runs", flush=True)
        ready = backend_ready(a.cold_runs, on.http_url)
        print(f"  ready: {[round(x, 2) for x in ready['ready_s']]} s", flush=True)
        self.results["cold_start"] = {"bento_first_answer_s": bento_s, "backend": ready}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "benchmarks" / "results" / f"local-{stamp}",
        help="results folder (default benchmarks/results/local-<UTC time>)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase (10)")
    parser.add_argument(
        "--users",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4, 16],
        help="concurrent users of the curves, comma-separated (1,4,16)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="on/off/raw rounds (default 2)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts each (default 3)")
    parser.add_argument(
        "--sizes", default="256,512,1024", help="synthetic image sides (256,512,1024)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.cold_runs < 1 or args.seconds <= 0 or min(args.users) < 1:
        parser.error("--rounds, --cold-runs, --seconds and --users must be positive")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = Suite(args).run()
    results["meta"]["wall_s"] = round(time.perf_counter() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    report.write(args.out, results)
    print(f"\nwrote {args.out} in {results['meta']['wall_s']:.0f} s", flush=True)
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
