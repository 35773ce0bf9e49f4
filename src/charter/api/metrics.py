"""Prometheus metrics of the server: requests by route and status, and their latency.

With several worker processes (`charter server --workers N`) the counters are aggregated across
processes through prometheus_client's multiprocess mode (`charter server` prepares its directory).
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PREFIX = "/api/v1"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, *, multiprocess: bool = False) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.multiprocess = multiprocess
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "charter_http_requests",
            "HTTP requests handled, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "charter_http_request_duration_seconds",
            "Time to handle an HTTP request, by route template",
            ["route", "method"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A plain ASGI middleware (Starlette's function middleware costs a task per request)."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def noting_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, noting_send)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

        return measured

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path_format", None) or "unmatched"
        path = str(scope.get("path", ""))
        if path.startswith(API_PREFIX) and not template.startswith(API_PREFIX):
            template = API_PREFIX + template  # routes of an included router carry no prefix
        if template.startswith(API_PREFIX) or template in ("/healthz", "/readyz"):
            method = str(scope.get("method", ""))
            self.requests.labels(template, method, str(status)).inc()
            self.latency.labels(template, method).observe(seconds)

    def exposition(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = self.registry
        if self.multiprocess:  # `charter server --workers N` sets PROMETHEUS_MULTIPROC_DIR
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
