"""Prometheus metrics: one registry per app (so tests can build several apps in one process)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

disable_created_metrics()  # the _created series only add noise to scrapes

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The backend's counters, histograms and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "backend_http_requests", "HTTP requests.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "backend_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "backend_inference_duration_seconds",
            "Successful model server calls (one image).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inference_outcomes = Counter(
            "backend_detections",
            "Detection runs by outcome (done, pending, failed).",
            ["outcome"],
            registry=r,
        )
        self.model_retries = Counter(
            "backend_model_retries", "Retries of an unreachable model server.", registry=r
        )
        self.objects = Counter("backend_objects_detected", "Circles stored.", registry=r)
        self.uploads_rejected = Counter(
            "backend_uploads_rejected", "Uploads refused, by status code.", ["status"], registry=r
        )
        self.pending = Gauge(
            "backend_images_pending",
            "Images stored but not yet detected (status pending).",
            registry=r,
        )


class MetricsMiddleware:
    """Counts requests and their latency by route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_of(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


UNMATCHED = "unmatched"


def _route_of(scope: dict[str, Any]) -> str:
    """The matched route's template, e.g. /api/v1/images/{image_id}/objects/{object_id}.

    Routing puts the matched route in the scope; its template is the label, never the raw path,
    so labels stay few. FastAPI (0.16x) includes routers lazily: the route's own `path` lacks
    the include prefix, which its effective route context in the scope has. A mount (the web
    page at /) is labelled with its prefix and `{path}`; anything unmatched is one fixed label.
    """
    route = scope.get("route")
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path", None) or getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return f"{path}/{{path}}"
    return path or "/"
