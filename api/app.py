"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import correlation, metrics, problems
from api.cors import Cors
from api.deps import Services
from api.limits import BodyLimit
from api.routes import (
    analytics,
    auth,
    browser,
    commands,
    dashboard,
    events,
    health,
    identity,
    ingest,
    partners,
    projections,
    social,
    sql,
    users,
    webhook,
)  # fmt: skip


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
    # outside the body limit: a 413 still carries CORS headers, so a page can read it
    app.add_middleware(Cors, origins=services.settings.cors_origins)
    # it times and counts what every other layer answers, 413s included
    app.add_middleware(metrics.RequestMetrics)
    # outermost: every layer's log lines and answers carry the request's correlation id
    app.add_middleware(correlation.Correlation)
    problems.install(app)
    app.include_router(metrics.router)
    for module in (health, auth, users, partners, commands, ingest, browser, sql, analytics,
                   projections, social, identity, events, webhook, dashboard):  # fmt: skip
        app.include_router(module.router)
    # The dashboard's script, styles and vendored Chart.js: same origin, no CDN.
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    return app
