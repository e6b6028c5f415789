"""``GET /dashboard`` (the analytics dashboard), ``GET /timeline`` (the social page) and
``GET /identity`` (identity commands and the live prospect list).

The page itself is public and carries no data: a browser cannot attach a bearer header to
a navigation, so the page's script asks for the admin token (or takes ``?token=``), keeps
it in ``sessionStorage`` and calls ``/v1/analytics/*`` with ``Authorization: Bearer``;
those routes do the authorisation. Script, styles and Chart.js come from ``/static``.

Range: all stored data by default (``GET /v1/analytics/bounds``); the presets (1 h, 24 h,
7 and 30 days) end at the newest event rather than at now, because the demo web logs are
from 1995 and 2015; a custom range takes two UTC datetimes (``api/static/dashboard.js``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(tags=["dashboard"])

PAGE = Path(__file__).resolve().parent.parent / "templates" / "dashboard.html"
TIMELINE_PAGE = PAGE.with_name("timeline.html")
IDENTITY_PAGE = PAGE.with_name("identity.html")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_HEADERS = {
    # Same-origin scripts only (no inline script): an injected string cannot run and read
    # the token in sessionStorage. Chart.js styles its canvas through the CSSOM, which
    # style-src does not restrict.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    # A ?token= in the address must not leak to other sites through Referer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/dashboard", response_class=FileResponse, include_in_schema=False)
async def dashboard() -> FileResponse:
    """The static dashboard HTML (no data; see the module docstring)."""
    return FileResponse(PAGE, media_type="text/html", headers=_HEADERS)


@router.get("/timeline", response_class=FileResponse, include_in_schema=False)
async def timeline() -> FileResponse:
    """The social timeline page: sign in, the home feed, post, new chirps live (SSE read
    with fetch, so the bearer header goes along). Same rules as the dashboard: no data in
    the page, same-origin script only."""
    return FileResponse(TIMELINE_PAGE, media_type="text/html", headers=_HEADERS)


@router.get("/identity", response_class=FileResponse, include_in_schema=False)
async def identity() -> FileResponse:
    """The identity page: sign in (staff), send a command through a form built from its
    JSON Schema (``GET /api/identity/commands``), and watch the prospect list follow the
    read model live over ``/ws/events``. Same rules as the dashboard."""
    return FileResponse(IDENTITY_PAGE, media_type="text/html", headers=_HEADERS)
