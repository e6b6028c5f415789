"""Request metrics (ASGI middleware) and ``GET /metrics`` (Prometheus text format).

The route label is the matched route's template (``/api/admin/users/{user_id}``), never
the raw path: ids in paths would make one series per id. A request that matched no route
is counted under ``unmatched``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors import metrics

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Every process's metrics (``connectors.metrics``), for a Prometheus scrape. Not
    authenticated, as scrape targets usually are not: expose the port to the monitoring
    network only."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


class RequestMetrics:
    """ASGI middleware counting each HTTP request by route, method and status, and
    observing its duration (s) until the response's last byte was handed to the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it responds

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            label, method = template or "unmatched", scope["method"]
            metrics.HTTP_REQUESTS.labels(label, method, str(status)).inc()
            metrics.HTTP_SECONDS.labels(label, method).observe(time.perf_counter() - started)
