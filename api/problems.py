"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

``type`` URIs are relative (``/problems/<slug>``) and stable: clients may switch on them.
"""

from __future__ import annotations

from typing import Any

import structlog
from clickhouse_connect.driver.exceptions import (
    OperationalError as ClickHouseOperationalError,
)
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.edge import is_edge_path
from connectors.exceptions import KafkaDeliveryError
from pipeline.common.problems import RETRY_AFTER_S, Problem

__all__ = ["MEDIA_TYPE", "RETRY_AFTER_S", "Problem", "install", "problem_response"]

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# Outages: errors that mean "a store did not answer", whichever route met them.
_STORE_OF: dict[type[Exception], str] = {
    RedisConnectionError: "Redis",
    RedisTimeoutError: "Redis",
    KafkaDeliveryError: "Kafka",
    ClickHouseOperationalError: "ClickHouse",
}

# Slugs the routes use for a status, so the framework's own errors match them.
_SLUGS = {413: "too-large"}


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The problem document. On the edge's paths (``api.edge``) it also carries Segment's
    ``code`` (the slug) and ``message`` (the detail): the two members Segment's SDKs read
    from an error (analytics-python ``request.py`` raises ``APIError(status, code,
    message)``)."""
    body = {
        "type": f"/problems/{slug}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **({"instance": instance} if instance else {}),
        **extra,
    }
    if instance is not None and is_edge_path(instance):
        body.setdefault("code", slug)
        body.setdefault("message", detail)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Route every error through problem details, including FastAPI's own."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.slug,
            exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(
                400, "malformed-json", "request body is not valid JSON",
                instance=request.url.path, errors=errors,
            )  # fmt: skip
        return problem_response(
            422, "validation", "request failed validation",
            instance=request.url.path, errors=errors,
        )  # fmt: skip

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = _SLUGS.get(exc.status_code) or _TITLES.get(exc.status_code, "error")
        slug = slug.lower().replace(" ", "-")
        return problem_response(
            exc.status_code, slug, str(exc.detail), instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )  # fmt: skip

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A store that is down is the client's cue to retry, not a bug: 503 + Retry-After.
        # The detail names the store, never the driver's text (addresses, internals).
        store = _STORE_OF.get(type(exc), "a backing store")
        log.warning("store unavailable", path=request.url.path, store=store, error=repr(exc))
        return problem_response(
            503, "unavailable", f"{store} is not answering; retry shortly",
            instance=request.url.path, headers={"Retry-After": RETRY_AFTER_S},
        )  # fmt: skip

    for error in _STORE_OF:
        app.add_exception_handler(error, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal", "internal error", instance=request.url.path)
