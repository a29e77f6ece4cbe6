"""Serve the Bento and the backend side by side on 127.0.0.1: the README's main command.

The Bento starts first (`bentoml serve` from the repository root); the backend starts once the
model is ready, pointed at it, on SQLite in `DATA_DIR` (default `data/`).

Ctrl-C (SIGINT) or SIGTERM stops both, in order, and exits 0. The servers run in their own
sessions, so the terminal's Ctrl-C reaches only this script, which then stops each server once
(a second SIGINT makes uvicorn abort with a traceback), and they are told to exit if this script
dies (`PR_SET_PDEATHSIG`). When run from a terminal (as `make serve` is), the script takes the
terminal's foreground so that Ctrl-C does not also interrupt `make`, which would report an error.
If either server dies on its own, the other is stopped and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
_PR_SET_PDEATHSIG = 1


class Stopped(Exception):
    """Ctrl-C or SIGTERM arrived."""


def _die_with_parent() -> None:
    """In the child before exec: own session, and SIGTERM when this script dies."""
    os.setsid()
    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def terminal_foreground() -> Iterator[None]:
    """Make this script the terminal's foreground process group while it runs, if it has one."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        yield
        return
    before = None
    try:
        group = os.tcgetpgrp(tty)
        if group == os.getpgrp() != os.getpid():  # under make: the foreground group is make's
            os.setpgid(0, 0)
            with _ignoring(signal.SIGTTOU):
                os.tcsetpgrp(tty, os.getpgrp())
            before = group
    except OSError:
        pass
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(OSError), _ignoring(signal.SIGTTOU):
                os.tcsetpgrp(tty, before)
        os.close(tty)


@contextlib.contextmanager
def _ignoring(signum: signal.Signals) -> Iterator[None]:
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)


class Servers:
    """The started servers; `wait` returns when one exits or a stop is asked for."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stop_requested = threading.Event()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, preexec_fn=_die_with_parent)
        self.processes.append((name, process))
        return process

    def check(self) -> None:
        if self.stop_requested.is_set():
            raise Stopped
        for name, process in self.processes:
            if process.poll() is not None:
                raise SystemExit(f"error: the {name} exited with status {process.returncode}")

    def wait_ready(self, url: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            self.stop_requested.wait(0.3)
        raise SystemExit(f"error: {url} was not ready after {timeout_s:.0f} s")

    def run_until_stopped(self) -> None:
        while True:
            self.check()
            self.stop_requested.wait(0.5)

    def stop(self) -> None:
        """SIGINT each running server once, newest first; SIGKILL what is left after 15 s."""
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bento-port", type=int, default=3000, help="V2 REST port (3000)")
    parser.add_argument("--grpc-port", type=int, default=8081, help="V2 gRPC port (8081)")
    parser.add_argument("--backend-port", type=int, default=8000, help="backend port (8000)")
    parser.add_argument("--timeout", type=float, default=180.0, help="readiness wait, s (180)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = Servers()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: servers.stop_requested.set())
    with terminal_foreground():
        try:
            serve(servers, args)
        except Stopped:
            print("\nstopping the backend and the Bento", flush=True)
            return 0
        except SystemExit as exit_:
            print(exit_.code, file=sys.stderr, flush=True)
            return 1
        finally:
            servers.stop()
    return 0


def serve(servers: Servers, args: argparse.Namespace) -> None:
    bento_argv = [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port"]
    bento_env = {**os.environ, "CIRCLE_DETECTOR_GRPC_PORT": str(args.grpc_port)}
    servers.start("Bento", [*bento_argv, str(args.bento_port)], bento_env)
    servers.wait_ready(f"http://127.0.0.1:{args.bento_port}/v2/health/ready", args.timeout)
    backend_env = {
        **os.environ,
        "MODEL_SERVER_URL": os.environ.get("MODEL_SERVER_URL", f"127.0.0.1:{args.bento_port}"),
    }
    backend_argv = [str(BIN / "python"), "-m", "backend", "--port", str(args.backend_port)]
    servers.start("backend", backend_argv, backend_env)
    servers.wait_ready(f"http://127.0.0.1:{args.backend_port}/health/ready", args.timeout)
    print(
        f"\nready:\n"
        f"  web page and API   http://127.0.0.1:{args.backend_port}/  (docs: /docs)\n"
        f"  Bento, V2 REST     http://127.0.0.1:{args.bento_port}/v2\n"
        f"  Bento, V2 gRPC     127.0.0.1:{args.grpc_port}\n"
        f"Ctrl-C stops both.\n",
        flush=True,
    )
    servers.run_until_stopped()


if __name__ == "__main__":
    sys.exit(main())
