"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from api import problems
from api.deps import Services
from api.routes import analytics, auth, commands, dashboard, health, ingest, partners, sql, users


class BodyLimit(BaseHTTPMiddleware):
    """413 for a declared body over ``limit`` bytes, before it is read."""

    def __init__(self, app: object, limit: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limit:
            return problems.problem_response(
                413, "too-large", f"body is {declared} bytes; the limit is {self.limit}",
                instance=request.url.path,
            )  # fmt: skip
        return await call_next(request)


def create_api(services: Services) -> FastAPI:
    """Build the app around already-started services (the entrypoint owns their lifecycle)."""
    app = FastAPI(
        title="streamfold",
        version="0.1.0",
        description="Event sourcing and CQRS on Kafka. Commands go to Kafka; reads come from "
        "read models. Errors are RFC 9457 problem+json.",
    )
    app.state.services = services
    app.add_middleware(BodyLimit, limit=services.settings.max_body_bytes)
    problems.install(app)
    for module in (health, auth, users, partners, commands, ingest, sql, analytics, dashboard):
        app.include_router(module.router)
    # The dashboard's script, styles and vendored Chart.js: same origin, no CDN.
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app
