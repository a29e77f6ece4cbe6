"""Serve the model in one process: the V2 app on uvicorn, without BentoML's supervisor.

`bentoml serve` starts a supervisor process that imports the service, then a worker that
imports it again with BentoML's whole serving stack. This runs the same V2 app, dataplane,
batcher and gRPC server in a single process that imports neither BentoML nor torch, for
scale-to-zero deployments where the time to the first answer matters; it is the entrypoint of
the container image. One process: scale with replicas.

    python -m bentos.circle_detector.standalone [--host 0.0.0.0] [--port 3000] [--model-dir D]
    python -m bentos.circle_detector.standalone --model_name=NAME --model_dir=/mnt/models \
        --http_port=8080   # as KServe's ServingRuntime starts it

The port defaults to `BENTOML_PORT`, then `PORT` (Knative), then 3000. The model is the
directory `--model-dir` (or `CIRCLE_DETECTOR_MODEL_DIR`) names, a model folder or one subfolder
per version (those `CIRCLE_DETECTOR_VERSION_POLICY` selects, by default the newest), or else
`CIRCLE_DETECTOR_MODEL_TAG` in `$BENTOML_HOME`'s model store; it is served as
`/v2/models/{--model-name}`, by default its own name. Each option
has KServe's underscore spelling too (`--model_name`, `--model_dir`, `--http_port`,
`--grpc_port`).
Every other setting is the Bento's (`settings.py`), the header and body read timeouts
included. A bad setting is one line on stderr naming the variable, and exit status 2. Ctrl-C
or SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("circle_detector")


def _port(low: int) -> Any:
    def port(raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= 65535:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a port number ({low} to 65535)")
        return int(raw)

    return port


def build_parser() -> argparse.ArgumentParser:
    """The command line; the port's default comes from the environment (may raise
    `SettingsError` naming the variable)."""
    from .settings import http_port

    parser = argparse.ArgumentParser(
        prog="python -m bentos.circle_detector.standalone",
        description="Serve the circle detector's V2 API in a single process (fast cold start).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("BENTOML_HOST", "0.0.0.0"),
        help="address to bind (default: $BENTOML_HOST or 0.0.0.0)",
    )
    parser.add_argument(
        "--port",
        "--http-port",
        "--http_port",
        dest="port",
        type=_port(1),
        default=http_port(),
        help="HTTP port (default: $BENTOML_PORT, else $PORT, else 3000)",
    )
    parser.add_argument(
        "--grpc-port",
        "--grpc_port",
        dest="grpc_port",
        type=_port(0),
        default=None,
        help="gRPC port, 0 for none (default: $CIRCLE_DETECTOR_GRPC_PORT, else 8081)",
    )
    parser.add_argument(
        "--model-dir",
        "--model_dir",
        dest="model_dir",
        type=Path,
        default=None,
        help="model folder, or one subfolder per version, to serve read-only (default: "
        "$CIRCLE_DETECTOR_MODEL_DIR, else CIRCLE_DETECTOR_MODEL_TAG from the model store)",
    )
    parser.add_argument(
        "--model-name",
        "--model_name",
        dest="model_name",
        default=None,
        help="serve the model as /v2/models/NAME (default: $CIRCLE_DETECTOR_MODEL_NAME, else "
        "the model's own name)",
    )
    parser.add_argument("--backlog", type=int, default=2048, help="listen backlog (default 2048)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def _metrics_route() -> Any:
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    from starlette.responses import Response
    from starlette.routing import Route

    async def metrics(request: Any) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def build_app(server: Any) -> Any:
    """The V2 app with `/metrics`, serving `server` (a `ModelServer`) from start-up on."""
    from . import rest

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        server.attach(app)
        await server.start()  # warms up in the background: liveness answers meanwhile
        yield
        await server.stop()

    return rest.create_app([_metrics_route()], lifespan=lifespan)


def _with_arguments(settings: Any, args: argparse.Namespace) -> Any:
    """The settings with what the command line gives (it wins over the environment)."""
    overrides = {
        name: value
        for name, value in (
            ("model_dir", str(args.model_dir) if args.model_dir else None),
            ("model_name", args.model_name),
            ("grpc_port", args.grpc_port),
            ("port", args.port),
        )
        if value is not None
    }
    return dataclasses.replace(settings, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    from .settings import SettingsError, load_settings

    try:
        parser = build_parser()
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    settings = _with_arguments(settings, args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    from .model.artifacts import ModelFileError
    from .version_policy import PolicyError

    try:
        from . import model_store
        from .server import ModelServer

        folder = model_store.served_directory(settings.model_dir, settings.model_tag)
        server = ModelServer(folder, settings)
    except (ModelFileError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    import uvicorn

    from .http_timeouts import protocol

    sock.listen(args.backlog)
    config = uvicorn.Config(
        build_app(server),
        backlog=args.backlog,
        access_log=args.access_log,
        log_level=args.log_level,
        lifespan="on",
        ws="none",  # no websocket routes; importing an implementation costs 20 ms
        http=protocol(settings.header_timeout_s),
    )
    # The socket object itself, not its fd: uvicorn would rebuild an fd as a Unix socket, and
    # asyncio sets TCP_NODELAY only on TCP ones (without it Nagle's algorithm and delayed ACKs
    # add 40 ms to every response).
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
