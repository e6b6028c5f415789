"""The request body limit, counted as the body streams.

Starlette ships a limiter (``FastAPI(max_body_size=...)``), but for a declared
``Content-Length`` over the limit it replaces whatever the app answers with a
``text/plain`` 413, and every error here is RFC 9457 problem+json. So this one is ours.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` at the limit. An HTTPException, so FastAPI's body parsing
    lets it through as is; ``api.problems`` turns it into a 413 ``/problems/too-large``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyLimit:
    """ASGI middleware: at most ``limit`` bytes of request body per request.

    A declared ``Content-Length`` over the limit is answered 413 before the app runs. A
    body without one (chunked) is counted as it streams: the read that crosses the limit
    raises :class:`BodyTooLarge`, so nothing past ``limit`` bytes is read or held, and no
    authentication or parsing work follows (FastAPI reads the body before it solves a
    route's dependencies). Bytes, not characters; the decompressed size of a gzip body is
    the ingest route's own check.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            response = problem_response(
                413,
                "too-large",
                f"body is {declared} bytes; the limit is {self.limit}",
                instance=scope.get("path"),
                # The unread body is still on the wire, so the server drops the
                # connection; said out loud, a client does not send its next request on
                # it (httpx did, and got "Server disconnected": a flaky
                # test_errors_are_problem_details). RFC 9112, section 9.6.
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None
