"""Correlation ids (issue 25, seed 002): one id follows a request from the client to every
event it causes and every log line it writes.

``X-Correlation-ID`` is taken from the request when it is a plausible id (1-128 visible
ASCII characters: a client's or a gateway's), else made (a UUID); it is answered on the
response, bound to every structlog line of the request (``structlog.contextvars``), and
carried as the ``correlation_id`` of the commands the request sends, so the envelopes of
their events (and of the commands a process manager sends because of them) carry it too.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Correlation-ID"
_PLAUSIBLE = re.compile(r"[\x21-\x7e]{1,128}")
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current() -> str | None:
    """The correlation id of the request being served, None outside one."""
    return _current.get()


def accepted(value: str | None) -> str:
    """``value`` when it is a plausible id, else a new UUID (str)."""
    if value is not None and _PLAUSIBLE.fullmatch(value):
        return value
    return str(uuid.uuid4())


class Correlation:
    """ASGI middleware: the request's correlation id, bound for its whole handling and
    answered in ``X-Correlation-ID`` (HTTP responses; WebSocket handshakes too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-correlation-id"), None)
        correlation_id = accepted(given.decode("latin-1") if given is not None else None)

        header = (HEADER.lower().encode(), correlation_id.encode("latin-1"))

        async def answering(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = _current.set(correlation_id)
        try:
            with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
                await self.app(scope, receive, answering)
        finally:
            _current.reset(token)
