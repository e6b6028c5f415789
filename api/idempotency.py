"""Idempotency keys that last (issue 25, seed 004): a resend within 24 h gets the first
answer, however many commands its aggregate has seen since.

The aggregate remembers its last 100 command ids (``STREAMFOLD_RECENT_COMMANDS_PER_
AGGREGATE``); past that, a resend would run again. So a request with an
``Idempotency-Key`` also leaves, under its command id, a fingerprint of what it asked
(method, path and body) in Redis for ``IDEMPOTENCY_TTL_S`` (Stripe's window), and its
first result is kept by the ``command_status`` read model (7 days). A resend with the same
key:

- asks the same thing: it is answered with the first result (``duplicate``), nothing is
  sent again; if that result is not known yet (the first is still under way), the command
  is sent again and the aggregate's memory answers it;
- asks something else: 422 ``idempotency-key-reused`` (Stripe answers a reused key with
  other parameters the same way), nothing is sent.
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import replace

import orjson
from fastapi import Request
from redis.asyncio import Redis

from api.problems import Problem
from connectors.redis import get_command_result
from pipeline.domain.handling import CommandResult

IDEMPOTENCY_TTL_S = 24 * 3600
KEY = "streamfold:idempotency:{command_id}"
_request: ContextVar[bytes | None] = ContextVar("idempotency_fingerprint", default=None)


async def note_request(request: Request, key: str | None, secret: bytes) -> None:
    """Note the fingerprint of ``request`` when it carries an idempotency ``key``: for
    :func:`first_answer`, in this request's context. The body is Starlette's cached one.
    The fingerprint is an HMAC-SHA256 under ``secret``: a body may hold a password, and a
    plain hash of it in Redis could be guessed at offline."""
    if not key:
        return
    body = await request.body()
    try:  # the same JSON written with other spacing or key order asks the same
        body = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        pass
    asked = b"\n".join([request.method.encode(), request.url.path.encode(), body])
    _request.set(hmac.new(secret, asked, hashlib.sha256).digest())


async def first_answer(redis: Redis, command_id: str) -> CommandResult | None:
    """The first result of the request this one resends (``duplicate``), or None when it
    is the first (its fingerprint is kept from now on) or the first result is not known
    yet. Only for a request that carried a key; None otherwise.

    Raises:
        Problem: 422 ``idempotency-key-reused`` when the key came with another request.
    """
    fingerprint = _request.get()
    if fingerprint is None:
        return None
    key = KEY.format(command_id=command_id)
    if await redis.set(key, fingerprint, nx=True, ex=IDEMPOTENCY_TTL_S):
        return None
    if await redis.get(key) != fingerprint:
        raise Problem(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used for another request in the last 24 h; "
            "use a new key for a new request",
            command_id=command_id,
        )
    stored = await get_command_result(redis, command_id)
    if stored is None:
        return None
    return replace(CommandResult.from_dict(stored), duplicate=True)
