"""Live identity notifications: ``GET /ws/events`` (WebSocket) and the same stream as
Server-Sent Events, ``GET /api/events/stream`` (issue 11).

WebSocket protocol (JSON text frames):

- authenticate with the JWT in the ``Sec-WebSocket-Protocol`` header (offer the two
  subprotocols ``bearer`` and the token; the server picks ``bearer``), or in the first
  message, ``{"type": "auth", "token": ..., "last_id": ..., "types": [...]}``, within
  ``AUTH_TIMEOUT_S``. Never in the URL: URLs end up in logs. ``last_id`` (resume after it)
  and ``types`` may also be query parameters;
- the server sends ``{"type": "ready", "last_id"}`` once subscribed, then
  ``{"type": "notifications", "items": [{id, event_type, subject, aggregate_version,
  at}, ...]}`` as the read models change, and ``{"type": "heartbeat", "at"}`` every
  ``HEARTBEAT_S``;
- close codes: 4400 bad request (malformed id or types), 4401 no, invalid or expired
  token, 4403 a role that may not see what it asked for, 1013 too slow (its queue
  filled: reconnect with ``last_id``), 1001 the server is stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import PrincipalDep, Services, ServicesDep, authenticate, per_app
from api.live import entry_key
from api.notifications import Audience, IdentityNotifications, Refused
from api.problems import Problem
from api.security import Principal
from pipeline.projections import identity, users

router = APIRouter(tags=["live"])

AUTH_TIMEOUT_S = 10.0
HEARTBEAT_S = 15.0
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 1013
"""IANA "Try Again Later": the client fell behind; it reconnects with its ``last_id``."""


def _hub(conn: Any, services: Services) -> IdentityNotifications:
    return per_app(conn, "identity_notifications", lambda: IdentityNotifications(services.redis))


def _types(raw: Any) -> frozenset[str] | None:
    """``"prospect,student"`` or ``["prospect", "student"]`` -> the set; None for none.
    Raises ValueError for anything else (a number, a list of numbers)."""
    if raw is None:
        return None
    parts = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise ValueError("types: a comma-separated string or a list of strings")
    return frozenset(p.strip() for p in parts if p.strip()) or None


def _resume_id(raw: Any) -> str | None:
    """Raises ValueError for an id this API never sent."""
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > 64:
        raise ValueError("last_id: not an id this API sent")
    entry_key(raw)
    return raw


async def audience(services: Services, who: Principal, asked: frozenset[str] | None) -> Audience:
    """What ``who`` may see of what it asked for. Raises Refused."""
    email = ""
    if who.role == "student":
        row = await users.user(services.clickhouse, who.user_id)
        email = "" if row is None else str(row["email"])
    return Audience.of(who.role, identity.email_audience(email), asked)


# -- WebSocket ------------------------------------------------------------------------------


async def _hello(ws: WebSocket) -> dict[str, Any]:
    """The first message, if the token was not in the header. Raises ValueError."""
    try:
        message = await asyncio.wait_for(ws.receive_json(), AUTH_TIMEOUT_S)
    except TimeoutError as exc:
        raise ValueError(f"no auth message within {AUTH_TIMEOUT_S:.0f} s") from exc
    if not isinstance(message, dict) or message.get("type") != "auth":
        raise ValueError('the first message must be {"type": "auth", "token": ...}')
    return message


@router.websocket("/ws/events")
async def ws_events(ws: WebSocket) -> None:
    """Identity change notifications over a WebSocket (the module docstring has the
    protocol)."""
    services: Services = ws.app.state.services
    offered = ws.scope.get("subprotocols") or []
    token = offered[1] if len(offered) == 2 and offered[0] == "bearer" else None
    await ws.accept(subprotocol="bearer" if token else None)
    try:
        hello = {} if token else await _hello(ws)
    except (ValueError, WebSocketDisconnect) as exc:
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_UNAUTHORIZED, str(exc)[:120])
        return
    token = token or hello.get("token")
    try:
        who = await authenticate(ws, services, token if isinstance(token, str) else None)
    except Problem as exc:
        await ws.close(CLOSE_UNAUTHORIZED, exc.detail[:120])
        return
    try:
        last_id = _resume_id(hello.get("last_id", ws.query_params.get("last_id")))
        asked = _types(hello.get("types", ws.query_params.get("types")))
        seen = await audience(services, who, asked)
    except ValueError as exc:
        await ws.close(CLOSE_BAD_REQUEST, str(exc)[:120])
        return
    except Refused as exc:
        await ws.close(CLOSE_FORBIDDEN, str(exc)[:120])
        return
    await _serve(ws, _hub(ws, services).stream(seen, last_id))


async def _serve(ws: WebSocket, items: AsyncGenerator[Any, None]) -> None:
    """Push until the client leaves, falls behind, or the server stops."""
    lock = asyncio.Lock()  # the pump and the heartbeat share the socket

    async def send(text: str) -> None:
        async with lock:
            await ws.send_text(text)

    async def pump() -> int:
        async for item in items:
            if item.payload is None:
                await send(f'{{"type":"ready","last_id":"{item.entry_id}"}}')
            else:
                await send(item.payload.frame)
        return CLOSE_TOO_SLOW  # the hub ended the stream: dropped

    async def beat() -> int:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await send(f'{{"type":"heartbeat","at":"{datetime.now(UTC).isoformat()}"}}')

    async def listen() -> int:
        while True:  # the client says nothing after hello; this notices it leaving
            if (await ws.receive())["type"] == "websocket.disconnect":
                return 1000

    tasks = [asyncio.create_task(job()) for job in (pump, beat, listen)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        code = 1011 if first.exception() else first.result()  # 1011: a send failed
    except asyncio.CancelledError:
        code = 1001
        raise
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # the pump may have been cancelled outside the generator (in a send): close it
        # now, so the hub forgets this subscriber at once, not at garbage collection
        with contextlib.suppress(Exception):
            await items.aclose()
        with contextlib.suppress(Exception):
            await ws.close(
                code, "too slow: reconnect with last_id" if code == CLOSE_TOO_SLOW else ""
            )


# -- Server-Sent Events -----------------------------------------------------------------------


async def _stream_of(
    services: ServicesDep,
    who: PrincipalDep,
    types: Annotated[str | None, Query(max_length=100, description="e.g. prospect,student")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> tuple[Audience, str | None]:
    # A dependency, not the route body: the body of a streaming route runs once the
    # 200 is sent, too late for a 4xx.
    try:
        resume = _resume_id(last_event_id)
    except ValueError as exc:
        raise Problem(422, "validation", f"Last-Event-ID: {exc}") from exc
    try:
        return await audience(services, who, _types(types)), resume
    except Refused as exc:
        raise Problem(403, "forbidden", str(exc)) from exc


@router.get("/api/events/stream", response_class=EventSourceResponse)
async def events_stream(
    request: Request,
    services: ServicesDep,
    subject: Annotated[tuple[Audience, str | None], Depends(_stream_of)],
) -> AsyncIterator[ServerSentEvent]:
    """The notifications of ``/ws/events`` as Server-Sent Events: ``ready`` first (its
    id is where the stream stands), then one ``notification`` per change (id: resume
    after it with ``Last-Event-ID``). Bearer token in the header; 403 for a role that may
    not see the ``types`` asked for."""
    seen, last_event_id = subject
    async for item in _hub(request, services).stream(seen, last_event_id):
        if item.payload is None:
            yield ServerSentEvent(event="ready", id=item.entry_id, data={})
            continue
        for note in item.payload.notes:
            yield ServerSentEvent(event="notification", id=note["id"], data=note)
