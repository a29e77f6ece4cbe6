"""Start and stop a real `bentoml serve` of the circle-detector Bento for tests and benchmarks.

Usage (the `bento_server` fixture in `tests/conftest.py` does this once per session):

    home = prepare_bentoml_home(tmp_dir)          # imports the committed weights there
    with running_bento(home) as server:           # free HTTP + gRPC ports on 127.0.0.1
        httpx.get(f"http://{server.http_url}/v2/health/ready")

`http_url`/`grpc_url` are `127.0.0.1:PORT` (tritonclient wants no scheme); `metrics_url` is a
full URL. Every wait is bounded; on failure the server's log tail is in the exception.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BENTOML = Path(sys.executable).with_name("bentoml")
READY_TIMEOUT_S = float(os.environ.get("BENTO_READY_TIMEOUT_S", "90"))


@dataclass
class BentoServer:
    """A running Bento: addresses, the process and its log file."""

    http_url: str
    grpc_url: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    bentoml_home: Path
    startup_s: float

    @property
    def base_url(self) -> str:
        return f"http://{self.http_url}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def ephemeral_ports() -> range:
    """The kernel's range for implicitly chosen ports (bind to 0, a client's source port)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def free_port() -> int:
    """A port that is free now, drawn at random from below the kernel's ephemeral range.

    A port from `bind(0)` lies in the ephemeral range, which outgoing connections also take
    their source ports from: any client connecting anywhere could take it before the server
    binds (it happened to a Bento's gRPC port in a test run). Ports below the range are never
    handed out implicitly, so only another explicit choice can collide, and the bind check and
    the random draw make that unlikely.
    """
    low = ephemeral_ports().start
    candidates = range(10_000, low) if low > 11_000 else range(0)
    for _ in range(100):
        port = random.choice(candidates) if candidates else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError(f"no free port in {candidates}")


def prepare_bentoml_home(home: Path, weights: Path | None = None) -> Path:
    """Create a BentoML home at `home` and import weights (the committed ones by default)."""
    home.mkdir(parents=True, exist_ok=True)
    code = (
        "import sys; from bentos.circle_detector.commands.import_model import import_model;"
        "print(import_model(sys.argv[1] if len(sys.argv) > 1 else None)[0])"
    )
    subprocess.run(
        [sys.executable, "-c", code, *([str(weights)] if weights else [])],
        cwd=REPO_ROOT,
        env={**os.environ, "BENTOML_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=120,
    )
    return home


def serve_command(
    http_port: int | None, standalone: bool = False, bento: str | None = None
) -> list[str]:
    """`bentoml serve` (supervisor + worker), or the single-process launcher; `bento` serves a
    built Bento (tag or folder) with `bentoml serve` instead of the source tree; no
    `http_port`: the server's own default (`PORT`)."""
    port = ["--port", str(http_port)] if http_port else []
    if standalone:
        if bento:
            raise ValueError("the single-process launcher serves the source tree, not a Bento")
        return [sys.executable, "-m", "bentos.circle_detector.standalone", "--host", "127.0.0.1",
                *port]  # fmt: skip
    return [str(BENTOML), "serve", *([bento] if bento else []), "--host", "127.0.0.1", *port]


def start_bento(
    bentoml_home: Path,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    standalone: bool = False,
    bento: str | None = None,
    http_port: int | None = None,
    grpc_port: int | None = None,
    command: Sequence[str] | None = None,
) -> BentoServer:
    """`bentoml serve` from the repo root; returns once /v2/health/ready answers 200.

    `standalone=True` runs `python -m bentos.circle_detector.standalone` instead; `bento` serves
    a built Bento (from the home's store), started outside the source tree. Ports are free ones
    unless given (a stopped server can then come back at the same address). `command` replaces
    the whole command line (it must serve on `http_port` and `grpc_port`).
    """
    http_port = http_port or free_port()
    grpc_port = grpc_port or free_port()
    port_from_env = bool(env and "PORT" in env)  # as Knative does: no --port, PORT set
    if port_from_env:
        http_port = int(env["PORT"])
    log_path = log_path or bentoml_home / f"bento-{http_port}.log"
    full_env = {
        **os.environ,
        "BENTOML_HOME": str(private_home(bentoml_home, http_port)),
        "CIRCLE_DETECTOR_GRPC_PORT": str(grpc_port),
        "CIRCLE_DETECTOR_GRPC_HOST": "127.0.0.1",
        "BENTOML_DO_NOT_TRACK": "true",
        **(env or {}),
    }
    if port_from_env:
        full_env.pop("BENTOML_PORT", None)
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command or serve_command(None if port_from_env else http_port, standalone, bento),
            cwd=bentoml_home if bento else REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() ends the workers too
        )
    server = BentoServer(
        http_url=f"127.0.0.1:{http_port}",
        grpc_url=f"127.0.0.1:{full_env['CIRCLE_DETECTOR_GRPC_PORT']}",
        metrics_url=f"http://127.0.0.1:{http_port}/metrics",
        process=process,
        log_path=log_path,
        bentoml_home=bentoml_home,
        startup_s=0.0,
    )
    try:
        _wait_ready(server, timeout_s)
    except BaseException:
        stop_bento(server)
        raise
    server.startup_s = time.perf_counter() - started
    return server


def private_home(shared: Path, key: int) -> Path:
    """A BentoML home of one server's own that shares `shared`'s model and Bento stores.

    BentoML empties `$BENTOML_HOME/prometheus_multiproc_dir` whenever a server starts, so two
    servers on one home would wipe each other's `/metrics`.
    """
    home = shared / "servers" / str(key)
    home.mkdir(parents=True, exist_ok=True)
    for store in ("models", "bentos"):
        (shared / store).mkdir(exist_ok=True)
        link = home / store
        if not link.exists():
            link.symlink_to(shared / store, target_is_directory=True)
    return home


def _wait_ready(server: BentoServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    url = f"{server.base_url}/v2/health/ready"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"bentoml serve exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200 and _grpc_up(server.grpc_url):
                    return
            time.sleep(0.05)
    raise TimeoutError(f"Bento not ready after {timeout_s:.0f} s:\n{server.log_tail()}")


def _grpc_up(address: str) -> bool:
    """gRPC starts just after HTTP readiness; wait until its port accepts (port 0: disabled)."""
    host, port = address.rsplit(":", 1)
    if port == "0":
        return True
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, int(port))) == 0


def stop_bento(server: BentoServer, timeout_s: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    stop_process_group(server.process, signal.SIGTERM, timeout_s)


def stop_process_group(
    process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 15.0
) -> None:
    """Send `sig` to a server started with `start_new_session=True`; SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@contextlib.contextmanager
def running_bento(
    bentoml_home: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    standalone: bool = False,
    bento: str | None = None,
) -> Iterator[BentoServer]:
    server = start_bento(
        bentoml_home, env=env, timeout_s=timeout_s, standalone=standalone, bento=bento
    )
    try:
        yield server
    finally:
        stop_bento(server)
