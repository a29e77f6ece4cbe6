"""Serve the Bento in one process: BentoML's own HTTP worker, without the circus supervisor.

`bentoml serve` imports the service in a supervisor process and then starts a worker that
imports it again, torch included; that costs about a second of every cold start on 2 cores.
This runs the same worker code (`_bentoml_impl.worker.service`: same ASGI app, batcher, metrics,
V2 routes and gRPC server) directly in one process, for scale-to-zero deployments where the time
to the first answer matters. One worker only: scale with replicas.

    python -m bentos.circle_detector.standalone [--host 0.0.0.0] [--port 3000] [--bento B]

The port defaults to `BENTOML_PORT`, then `PORT` (Knative), then 3000. `--bento` serves a built
Bento (a tag in the store, or its folder, e.g. `/home/bentoml/bento` in a Bento container) with
the models packed in it; by default the service is imported from the source tree and its model
comes from `$BENTOML_HOME`'s store.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence

SERVICE = "bentos.circle_detector.service:CircleDetectorService"


def _default_port() -> int:
    return int(os.environ.get("BENTOML_PORT") or os.environ.get("PORT") or 3000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bentos.circle_detector.standalone",
        description="Serve the circle-detector Bento in a single process (fast cold start).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("BENTOML_HOST", "0.0.0.0"),
        help="address to bind (default: $BENTOML_HOST or 0.0.0.0)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_default_port(),
        help="HTTP port (default: $BENTOML_PORT, else $PORT, else 3000)",
    )
    parser.add_argument("--backlog", type=int, default=2048, help="listen backlog (default 2048)")
    parser.add_argument(
        "--bento",
        default=SERVICE,
        help="built Bento tag or folder, or a service import path (default %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    # BentoML's metrics run in Prometheus multiprocess mode; give this process its own folder.
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="bento-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from _bentoml_impl.worker.service import main as worker_main
    from bentoml.exceptions import BentoMLException

    try:
        worker_main.main(
            args=[args.bento, "--fd", str(sock.fileno()), "--backlog", str(args.backlog)],
            standalone_mode=False,
        )
    except BentoMLException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
