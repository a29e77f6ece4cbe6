"""Serve the Bento and the backend side by side on 127.0.0.1: the README's main command.

The Bento starts first (`bentoml serve` from the repository root); the backend starts once the
model is ready, pointed at it, on SQLite in `DATA_DIR` (default `data/`). Ctrl-C stops both, and
if either process dies the other is stopped too, so nothing is left running in the background.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_until(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: the process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"error: {url} was not ready after {timeout_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bento-port", type=int, default=3000, help="V2 REST port (3000)")
    parser.add_argument("--grpc-port", type=int, default=8081, help="V2 gRPC port (8081)")
    parser.add_argument("--backend-port", type=int, default=8000, help="backend port (8000)")
    parser.add_argument("--timeout", type=float, default=180.0, help="readiness wait, s (180)")
    args = parser.parse_args()

    bento_env = {**os.environ, "CIRCLE_DETECTOR_GRPC_PORT": str(args.grpc_port)}
    bento = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(args.bento_port)],
        cwd=ROOT,
        env=bento_env,
    )
    processes = [bento]

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        wait_until(f"http://127.0.0.1:{args.bento_port}/v2/health/ready", bento, args.timeout)
        backend_env = {
            **os.environ,
            "MODEL_SERVER_URL": os.environ.get("MODEL_SERVER_URL", f"127.0.0.1:{args.bento_port}"),
        }
        backend = subprocess.Popen(
            [str(BIN / "python"), "-m", "backend", "--port", str(args.backend_port)],
            cwd=ROOT,
            env=backend_env,
        )
        processes.append(backend)
        wait_until(f"http://127.0.0.1:{args.backend_port}/health/ready", backend, args.timeout)
        print(
            f"\nready:\n"
            f"  web page and API   http://127.0.0.1:{args.backend_port}/  (docs: /docs)\n"
            f"  Bento, V2 REST     http://127.0.0.1:{args.bento_port}/v2\n"
            f"  Bento, V2 gRPC     127.0.0.1:{args.grpc_port}\n"
            f"Ctrl-C stops both.\n",
            flush=True,
        )
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("error: a server exited; stopping the other", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
