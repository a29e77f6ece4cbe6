"""pytest plugin: point the `bento_server` fixture at the Bento's container instead of a local
`bentoml serve`, so the Bento's own V2 client tests run unchanged against the image.

Used only by `scripts/container-test.sh`:
    pytest -p tests.k8s.container_plugin tests/bentos/circle_detector/test_rest_tritonclient.py ...
with CONTAINER_BENTO_HTTP and CONTAINER_BENTO_GRPC (host:port on 127.0.0.1) and
CONTAINER_BENTO_NAME (the podman container, whose log becomes the server's log). A `-p` plugin is
imported before conftest.py files, so replacing `tests.servers.running_bento` here is what the
session's conftest imports.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import tests.servers as servers


@contextlib.contextmanager
def _running_container(
    bentoml_home: Path, env: Mapping[str, str] | None = None, timeout_s: float = 0
) -> Iterator[servers.BentoServer]:
    if env:
        raise RuntimeError("the container's environment is fixed at `podman run`; got " + str(env))
    http, grpc = os.environ["CONTAINER_BENTO_HTTP"], os.environ["CONTAINER_BENTO_GRPC"]
    log_path = bentoml_home / "container.log"
    with log_path.open("wb") as log:
        # A real process whose lifetime is the server's log stream.
        process = subprocess.Popen(
            ["podman", "logs", "--follow", os.environ["CONTAINER_BENTO_NAME"]],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = servers.BentoServer(
        http_url=http,
        grpc_url=grpc,
        metrics_url=f"http://{http}/metrics",
        process=process,
        log_path=log_path,
        bentoml_home=bentoml_home,
        startup_s=0.0,
    )
    try:
        servers._wait_ready(server, timeout_s or servers.READY_TIMEOUT_S)
        yield server
    finally:
        process.terminate()
        process.wait(10)


if os.environ.get("CONTAINER_BENTO_HTTP"):
    servers.running_bento = _running_container
