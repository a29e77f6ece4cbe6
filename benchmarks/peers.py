"""The Bento against the stock peers: KServe's `ModelServer` and MLServer, side by side.

All three serve the project's own model code and committed weights (the peers through
`benchmarks/peer_servers/`, written as their docs show), on 127.0.0.1, with the same 2 network
threads, the same images and the same client (tritonclient, via Locust). The peers run in
virtual environments of their own under `benchmarks/results/peer-venvs/` (created on first use:
`kserve==0.21.0`; `mlserver==1.7.1` with `uvloop==0.21.0`, the last uvloop its worker starts
with). The Bento is what its container runs: the single-process launcher.

1. Agreement: every image of the mix over gRPC to each server, the same detections.
2. Load, in alternating rounds (the server order rotates each round): Locust closed-loop users
   at each of `--users`, over REST and gRPC, `--seconds` each; peak RSS of each server's process
   tree is sampled during its 16-user phases. REST is each server's best: the Bento takes the
   binary tensor extension (raw file bytes); KServe's and MLServer's REST decode BYTES as text,
   so they get base64 in JSON. gRPC carries the same raw bytes to all three: the like-for-like
   comparison.
3. Cold start, `--cold-runs` times each, alternating: process start to the first successful V2
   REST inference (the Bento also with `bentoml serve`).

Writes `results.json`, `summary.md` (tables, ratios, targets) and `peers.png` into `--out`.
A benchmark, not a test: `make bench-peers`.

    python benchmarks/peers.py [--out DIR] [--seconds 10] [--rounds 2] [--peer-runtime torch]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.cold_start_bento import time_to_first_answer  # noqa: E402
from benchmarks.corpus import samples  # noqa: E402
from benchmarks.locust_run import run_locust  # noqa: E402
from tests.servers import free_port, prepare_bentoml_home, serve_command  # noqa: E402

VENVS = REPO_ROOT / "benchmarks" / "results" / "peer-venvs"
MODEL = "circle-detector"
#: What the peers' environments get besides the server: the model code's own needs.
MODEL_REQUIREMENTS = [
    "numpy>=1.26,<3",
    "opencv-python-headless>=4.10",
    "pillow>=10.4",
    "onnxruntime==1.32.0",
    "prometheus-client>=0.20",
]
PEER_REQUIREMENTS = {
    "kserve": ["kserve==0.21.0"],
    "mlserver": ["mlserver==1.7.1", "uvloop==0.21.0"],
}
SERVERS = ("bento", "kserve", "mlserver")
#: MLServer's adaptive batching, as its docs set it up: the Bento's batch size, 5 ms to fill.
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.005}
RSS_USERS = 16


@dataclass
class Running:
    """A server started here: its process, REST and gRPC addresses."""

    name: str
    process: subprocess.Popen[bytes]
    http: str
    grpc: str
    log: Path
    rss_samples: list[int] = field(default_factory=list)


def ensure_venv(peer: str, torch: bool) -> Path:
    """The peer's virtual environment, created once per requirement set; returns its bin/."""
    wanted = PEER_REQUIREMENTS[peer] + MODEL_REQUIREMENTS + (["torch==2.13.0"] if torch else [])
    venv = VENVS / f"{peer}-{'torch' if torch else 'onnx'}"
    stamp = venv / "requirements.txt"
    if stamp.exists() and stamp.read_text().split() == wanted:
        return venv / "bin"
    print(f"creating {venv} ({' '.join(wanted)}); a few minutes the first time", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for args in (["--upgrade", "pip"], wanted):
        done = subprocess.run([*pip, *args], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    stamp.write_text("\n".join(wanted) + "\n")
    return venv / "bin"


def peer_env(runtime: str) -> dict[str, str]:
    """Every server's environment: 2 network threads, the peers' runtime, the source tree."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PEER_RUNTIME": runtime,
        "PEER_THREADS": "2",
        "CIRCLE_DETECTOR_THREADS": "2",
        "BENTOML_DO_NOT_TRACK": "true",
    }


def git_revision() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return done.stdout.strip()


def server_command(
    name: str, bins: dict[str, Path], http: int, grpc: int, work: Path, bentoml: bool = False
) -> tuple[list[str], Path]:
    """How each server is started on these ports, and the folder it starts in."""
    if name == "bento":
        return serve_command(http, standalone=not bentoml), REPO_ROOT
    if name == "kserve":
        module = "benchmarks.peer_servers.kserve_model"
        return [str(bins["kserve"] / "python"), "-m", module, "--http_port", str(http),
                "--grpc_port", str(grpc)], REPO_ROOT  # fmt: skip
    folder = work / f"mlserver-{http}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"http_port": http, "grpc_port": grpc, "metrics_port": free_port(), "debug": False}
    (folder / "settings.json").write_text(json.dumps(settings))
    implementation = "benchmarks.peer_servers.mlserver_model.CircleDetectorRuntime"
    model = {"name": MODEL, "implementation": implementation, **MLSERVER_BATCH}
    (folder / "model-settings.json").write_text(json.dumps(model))
    return [str(bins["mlserver"] / "mlserver"), "start", str(folder)], folder


def start(
    name: str, bins: dict[str, Path], env: dict[str, str], work: Path, timeout_s: float = 120
) -> Running:
    http, grpc = free_port(), free_port()
    command, cwd = server_command(name, bins, http, grpc, work)
    log = work / f"{name}-{http}.log"
    run_env = {**env, "CIRCLE_DETECTOR_GRPC_PORT": str(grpc)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=run_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = Running(name, process, f"127.0.0.1:{http}", f"127.0.0.1:{grpc}", log)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                ready = client.get(f"http://{server.http}/v2/models/{MODEL}/ready")
                if ready.status_code == 200 and _grpc_answers(server.grpc):
                    return server
            time.sleep(0.2)
    stop(server)
    raise TimeoutError(f"{name} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


def _grpc_answers(address: str) -> bool:
    import tritonclient.grpc as grpcclient

    try:
        with grpcclient.InferenceServerClient(address) as client:
            return bool(client.is_model_ready(MODEL))
    except Exception:
        return False


def stop(server: Running) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(5)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants now."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


@contextlib.contextmanager
def sampling_rss(server: Running, period_s: float = 0.2) -> Iterator[None]:
    done = threading.Event()

    def sample() -> None:
        while not done.wait(period_s):
            server.rss_samples.append(tree_rss(server.process.pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def check_agreement(servers: list[Running]) -> dict[str, Any]:
    """Every image over gRPC to every server: the peers must find what the Bento finds."""
    import tritonclient.grpc as grpcclient

    found: dict[str, list[np.ndarray]] = {}
    for server in servers:
        rows = []
        with grpcclient.InferenceServerClient(server.grpc) as client:
            for sample in samples():
                tensor = grpcclient.InferInput("image", [1], "BYTES")
                tensor.set_data_from_numpy(np.array([sample.data], dtype=object))
                result = client.infer(MODEL, [tensor])
                n = int(result.as_numpy("num_detections").reshape(-1)[0])
                centers = result.as_numpy("centers").reshape(-1, 2)[:n]
                radii = result.as_numpy("radii").reshape(-1)[:n]
                scores = result.as_numpy("scores").reshape(-1)[:n]
                rows.append(np.column_stack([centers, radii, scores]))
        found[server.name] = rows
    report: dict[str, Any] = {"images": len(samples()), "circles": sum(map(len, found["bento"]))}
    for name in found:
        if name == "bento":
            continue
        counts = [len(a) == len(b) for a, b in zip(found["bento"], found[name], strict=True)]
        worst = max(
            (float(np.abs(a - b).max()) for a, b in zip(found["bento"], found[name], strict=True)
             if len(a) == len(b) and len(a)),
            default=0.0,
        )  # fmt: skip
        report[name] = {"same_counts": all(counts), "max_abs_difference": worst}
        if not all(counts) or worst > 5e-3:
            raise RuntimeError(f"{name} does not give the Bento's detections: {report[name]}")
    return report


def load_phase(server: Running, protocol: str, users: int, seconds: float, out: Path) -> dict:
    rest = protocol == "rest"
    target = "v2_http" if rest else "v2_grpc"
    host = f"http://{server.http if rest else server.grpc}"
    env = {"BENCH_BYTES_ENCODING": "binary" if server.name == "bento" or not rest else "base64"}
    prefix = out / "locust" / f"{server.name}-{protocol}-{users}u-{int(time.time() * 1000)}"
    before = len(server.rss_samples)
    with sampling_rss(server) if users == RSS_USERS else contextlib.nullcontext():
        result = run_locust(target, host, users, seconds, prefix, env)
    row = {"server": server.name, "protocol": protocol, **result.as_row()}
    if users == RSS_USERS:
        row["peak_rss_mb"] = max(server.rss_samples[before:], default=0) / 2**20
    return row


def cold_starts(bins: dict[str, Path], env: dict[str, str], work: Path, runs: int) -> dict:
    """Process start to the first successful V2 REST inference, alternating, `runs` each."""
    from benchmarks.cold_start_bento import _v2_request

    image = samples()[1].data
    binary_body, binary_headers = _v2_request(image)
    text = base64.b64encode(image).decode()
    json_body = json.dumps(
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [text]}]}
    ).encode()
    variants = {"bento": False, "bento (bentoml serve)": True, "kserve": None, "mlserver": None}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for run in range(runs):
        for name, bentoml in variants.items():
            http, grpc = free_port(), free_port()
            server = "bento" if bentoml is not None else name
            command, cwd = server_command(server, bins, http, grpc, work, bool(bentoml))
            run_env = {
                **env,
                "CIRCLE_DETECTOR_GRPC_PORT": str(grpc),
                "CIRCLE_DETECTOR_THREADS": "2",
            }
            body, headers = (
                (binary_body, binary_headers)
                if server == "bento"
                else (json_body, {"Content-Type": "application/json"})
            )
            url = f"http://127.0.0.1:{http}/v2/models/{MODEL}/infer"
            seconds = time_to_first_answer(command, cwd, run_env, url, body, headers, 120)
            times[name].append(seconds)
            print(f"cold start {run + 1}/{runs}: {name:<22} {seconds:.2f} s", flush=True)
    return {name: {"runs": v, "median_s": statistics.median(v)} for name, v in times.items()}


def median_rows(rows: list[dict]) -> dict[tuple[str, str, int], dict[str, float]]:
    """Per (server, protocol, users): the median over rounds of each figure."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["server"], row["protocol"], row["users"]), []).append(row)
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "failures", "requests", "peak_rss_mb")
    return {
        group: {k: statistics.median(r[k] for r in members if k in r) for k in keys
                if any(k in r for r in members)}
        for group, members in groups.items()
    }  # fmt: skip


def medians(results: dict[str, Any]) -> dict[tuple, dict[str, float]]:
    """`results["medians"]` with its JSON keys back as (server, protocol, users)."""
    return {tuple(json.loads(k)): v for k, v in results["medians"].items()}


def headline(results: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(figure, value, verdict) for each of the issue's targets."""
    m = medians(results)
    cold = results["cold_start"]

    def ratio(a: tuple, b: tuple, key: str) -> float:
        return m[a][key] / m[b][key]

    out = []
    for proto in ("rest", "grpc"):
        r = ratio(("bento", proto, 1), ("kserve", proto, 1), "p50_ms")
        out.append((f"{proto} p50 at 1 user, Bento / KServe", r, "target <= 0.9"))
        for peer, goal in (("kserve", 1.3), ("mlserver", 1.15)):
            r = ratio(("bento", proto, 16), (peer, proto, 16), "rps")
            want = goal if proto == "rest" else 1.0
            out.append((f"{proto} throughput at 16 users, Bento / {peer}", r, f"target >= {want}"))
    for peer in ("kserve", "mlserver"):
        rss = [m[("bento", p, RSS_USERS)]["peak_rss_mb"] / m[(peer, p, RSS_USERS)]["peak_rss_mb"]
               for p in ("rest", "grpc")]  # fmt: skip
        out.append((f"peak RSS at 16 users, Bento / {peer} (worse protocol)", max(rss), "<= 1.0"))
    out.append(("cold start, single process (s)", cold["bento"]["median_s"], "target <= 1.0"))
    out.append(
        ("cold start, bentoml serve (s)", cold["bento (bentoml serve)"]["median_s"], "<= 1.6")
    )
    return [(name, value, _verdict(value, goal)) for name, value, goal in out]


def _verdict(value: float, goal: str) -> str:
    bound = float(goal.split()[-1])
    met = value <= bound if "<=" in goal else value >= bound
    return f"{goal}: {'met' if met else 'MISSED'}"


def summary(results: dict[str, Any]) -> str:
    m = medians(results)
    lines = [
        "# Peers: the Bento, KServe's ModelServer, MLServer",
        "",
        f"{results['when']}, git `{results['git']}`; peers' network runtime "
        f"`{results['peer_runtime']}` (the Bento: onnx); {results['seconds']} s per phase, "
        f"{results['rounds']} rounds (medians); load average {results['load_before']} before.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        *(f"| {name} | {value:.2f} | {verdict} |" for name, value, verdict in headline(results)),
        "",
        "| server | protocol | users | req/s | p50 ms | p95 ms | p99 ms | failures | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (server, proto, users), v in sorted(m.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        rss = f"{v['peak_rss_mb']:.0f}" if "peak_rss_mb" in v else ""
        lines.append(
            f"| {server} | {proto} | {users} | {v['rps']:.1f} | {v['p50_ms']:.0f} | "
            f"{v['p95_ms']:.0f} | {v['p99_ms']:.0f} | {v['failures']:.0f} | {rss} |"
        )
    lines += ["", "| cold start | median s | runs |", "|---|---|---|"]
    for name, v in results["cold_start"].items():
        runs = ", ".join(f"{s:.2f}" for s in v["runs"])
        lines.append(f"| {name} | {v['median_s']:.2f} | {runs} |")
    lines += ["", f"Agreement: `{json.dumps(results['agreement'])}`", ""]
    return "\n".join(lines)


def plot(out: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = medians(results)
    users = sorted({k[2] for k in m})
    fig, axes = plt.subplots(2, 2, figsize=(9, 6), dpi=80, sharex=True)
    for col, proto in enumerate(("rest", "grpc")):
        for server in SERVERS:
            rps = [m[(server, proto, u)]["rps"] for u in users]
            p50 = [m[(server, proto, u)]["p50_ms"] for u in users]
            axes[0, col].plot(users, rps, marker="o", label=server)
            axes[1, col].plot(users, p50, marker="o", label=server)
        axes[0, col].set(title=f"V2 {proto.upper()}", ylabel="requests/s")
        axes[1, col].set(xlabel="Locust users (closed loop)", ylabel="p50 ms", yscale="log")
        axes[0, col].legend()
    fig.tight_layout()
    fig.savefig(out / "peers.png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / f"benchmarks/results/peers-{stamp}")
    parser.add_argument("--seconds", type=float, default=10.0, help="per load phase (10)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (2)")
    parser.add_argument("--users", default="1,8,16,32", help="Locust users (1,8,16,32)")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts per server (5)")
    parser.add_argument(
        "--peer-runtime",
        choices=("torch", "onnx"),
        default="torch",
        help="the peers' network runtime: torch (a PyTorch model as each peer serves one) or "
        "onnx (the Bento's own runtime, to compare the serving stacks alone); default torch",
    )
    args = parser.parse_args(argv)
    users = [int(u) for u in args.users.split(",")]
    if RSS_USERS not in users:
        parser.error(f"--users must include {RSS_USERS} (peak RSS is measured there)")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    bins = {peer: ensure_venv(peer, args.peer_runtime == "torch") for peer in PEER_REQUIREMENTS}
    load_before = os.getloadavg()[0]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        work = Path(tmp)
        home = prepare_bentoml_home(work / "bentoml-home")
        env = {**peer_env(args.peer_runtime), "BENTOML_HOME": str(home)}
        servers = [start(name, bins, env, work) for name in SERVERS]
        try:
            agreement = check_agreement(servers)
            print(f"agreement: {agreement}", flush=True)
            for r in range(args.rounds):
                order = servers[r % 3 :] + servers[: r % 3]
                for n in users:
                    for protocol in ("rest", "grpc"):
                        for server in order:
                            row = load_phase(server, protocol, n, args.seconds, out)
                            rows.append({**row, "round": r})
                            print(
                                f"round {r + 1} {server.name:<8} {protocol:<4} {n:>2} users: "
                                f"{row['rps']:6.1f} req/s p50 {row['p50_ms']:5.0f} ms "
                                f"failures {row['failures']}", flush=True,
                            )  # fmt: skip
        finally:
            for server in servers:
                stop(server)
            for server in servers:
                (out / f"{server.name}.log").write_bytes(server.log.read_bytes())
        cold = cold_starts(bins, env, work, args.cold_runs)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "peer_runtime": args.peer_runtime,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "agreement": agreement,
        "rows": rows,
        "medians": {json.dumps(list(k)): v for k, v in median_rows(rows).items()},
        "cold_start": cold,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "summary.md").write_text(summary(results))
    plot(out, results)
    print("\n" + summary(results))
    print(f"wrote {out}/results.json, summary.md, peers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
