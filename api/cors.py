"""CORS (the Fetch standard's cross-origin rules): open on the edge, closed elsewhere.

The edge (``api.edge``: ingestion, analytics.js's settings and bundle) answers any origin:
web pages send events with a write key that is public by design, so the browser's
same-origin rule protects nothing there. Which pages may send a system's events is the
system's own allowed-origins list, checked per request once the key is known
(``api.deps.system_for_key``), since a preflight carries no key. Never
``Access-Control-Allow-Credentials``: no route reads cookies. Every other route sends no
CORS headers unless the operator lists origins (``STREAMFOLD_CORS_ORIGINS``, a JSON
list), e.g. for a browser admin client on another origin (seed 000).

Starlette's ``CORSMiddleware`` does the work; the one change is the preflight's answer:
204 with no body (Fetch, "CORS-preflight fetch": any ok status), and a refused preflight
as problem+json like every other error here, not Starlette's ``text/plain`` 400.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.edge import is_edge_path
from api.problems import problem_response

EDGE_METHODS = ("GET", "POST")
EDGE_HEADERS = (
    "Authorization",  # analytics-next 1.x sends the write key as Basic auth
    "Content-Type",
    "Content-Encoding",
    "X-API-Key",
    "X-Retry-Count",  # analytics-next and segment-analytics-python on a retry
)
PREFLIGHT_MAX_AGE_S = 7200  # Chromium's cap; Firefox allows a day
# The SDKs honour Retry-After on a 429 (analytics-next reads it): a cross-origin page can
# only read it if it is exposed; Location names what a 201 made; X-Correlation-ID is what
# to quote when asking about a request (api/correlation.py).
EXPOSED = ("Retry-After", "Location", "X-Correlation-ID")


class _Cors(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        headers = {
            k: v for k, v in answer.headers.items() if k.lower().startswith(("access-", "vary"))
        }
        if answer.status_code == 200:
            return Response(status_code=204, headers=headers)
        refused = bytes(answer.body).decode()  # "Disallowed CORS origin, headers"
        return problem_response(
            400, "cors-preflight-refused", f"{refused}; this route allows methods "
            f"{', '.join(self.allow_methods)}", headers=headers,
        )  # fmt: skip


class Cors:
    """ASGI middleware: the edge's CORS on edge paths, the operator's (or none) elsewhere.

    ``origins``: what the non-edge routes allow (``STREAMFOLD_CORS_ORIGINS``); empty, they
    send no CORS headers and a preflight reaches the routes (405, as before).
    """

    def __init__(self, app: ASGIApp, *, origins: Sequence[str] = ()) -> None:
        self.app = app
        self.edge = _Cors(
            app,
            allow_origins=["*"],
            allow_methods=EDGE_METHODS,
            allow_headers=EDGE_HEADERS,
            expose_headers=EXPOSED,
            allow_private_network=True,  # a public page posting to an intranet collector
            max_age=PREFLIGHT_MAX_AGE_S,
        )
        self.rest: ASGIApp = app
        if origins:
            self.rest = _Cors(
                app,
                allow_origins=list(origins),
                allow_methods=("GET", "POST", "PUT", "DELETE"),
                allow_headers=("Authorization", "Content-Type", "Idempotency-Key"),
                expose_headers=EXPOSED,
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_edge_path(scope["path"]):
            await self.edge(scope, receive, send)
        else:
            await self.rest(scope, receive, send)
