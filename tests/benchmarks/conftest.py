"""Fixtures of the benchmark tests: a dummy-mode backend and Host-routing gateways.

The gateway is the real reverse proxy of the backend's Host-header test (uvicorn + httpx): like
the Istio ingress in front of KServe, it forwards only requests whose Host names the service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn

from tests.backend.helpers import BackendServer, start_backend, stop_backend
from tests.backend.inference.test_host_header import SERVICE_HOST, gateway_app
from tests.servers import free_port

__all__ = ["SERVICE_HOST"]


@pytest.fixture(scope="session")
def dummy_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendServer]:
    """`python -m backend` in MODE=dummy on SQLite, no API key."""
    data_dir = tmp_path_factory.mktemp("bench-backend")
    env = {"MODE": "dummy", "DATABASE_URL": "", "STATIC_DIR": str(data_dir / "no-page")}
    server = start_backend(data_dir, env)
    yield server
    stop_backend(server)


@pytest.fixture(scope="module")
def start_gateway() -> Iterator[Callable[[str], tuple[str, list[str]]]]:
    """Starts Host-routing gateways in front of `host:port` upstreams: (address, seen hosts)."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(upstream: str) -> tuple[str, list[str]]:
        seen: list[str] = []
        port = free_port()
        config = uvicorn.Config(
            gateway_app(upstream, seen), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.02)
        return f"127.0.0.1:{port}", seen

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
