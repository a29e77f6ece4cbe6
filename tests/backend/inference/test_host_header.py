"""MODEL_HOST_HEADER: calling the model through a gateway that routes by Host header.

The gateway here is a small real reverse proxy (uvicorn + httpx) that, like the Istio ingress
in front of KServe, forwards only requests whose Host names the model's service and answers 404
to anything else. Behind it runs the real Bento.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.config import Settings
from backend.inference import ModelMisconfiguredError
from backend.inference.v2 import V2Client
from tests.backend.helpers import circles_png
from tests.servers import free_port

SERVICE_HOST = "circle-detector.default.example.com"
HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


def gateway_app(upstream: str, seen_hosts: list[str]) -> Starlette:
    client = httpx.AsyncClient(base_url=f"http://{upstream}", timeout=60)

    async def forward(request: Request) -> Response:
        host = request.headers.get("host", "")
        seen_hosts.append(host)
        if host != SERVICE_HOST:
            return JSONResponse({"error": f"no route for host {host!r}"}, status_code=404)
        upstream_response = await client.request(
            request.method,
            request.url.path,
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
        )
        headers = {
            k: v for k, v in upstream_response.headers.items() if k.lower() not in HOP_BY_HOP
        }
        return Response(upstream_response.content, upstream_response.status_code, headers)

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


@pytest.fixture(scope="module")
def gateway(bento_server) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    port = free_port()
    config = uvicorn.Config(
        gateway_app(bento_server.http_url, seen), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    yield f"127.0.0.1:{port}", seen
    server.should_exit = True
    thread.join(10)


async def test_host_header_reaches_the_model_through_the_gateway(gateway):
    url, seen = gateway
    client = V2Client(Settings(model_server_url=url, model_host_header=SERVICE_HOST))
    try:
        await client.ready()
        result = await client.infer(
            circles_png(seed=1), width=160, height=120, score_threshold=0.0, max_detections=5
        )
    finally:
        await client.close()
    assert result.model_name == "circle-detector" and result.model_version
    assert seen and set(seen) == {SERVICE_HOST}


async def test_without_the_host_header_the_gateway_has_no_route(gateway):
    url, _ = gateway
    client = V2Client(Settings(model_server_url=url))
    try:
        with pytest.raises(ModelMisconfiguredError, match="404"):
            await client.infer(
                circles_png(seed=1), width=160, height=120, score_threshold=0.0, max_detections=5
            )
    finally:
        await client.close()
