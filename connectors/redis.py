"""Redis through redis-py's asyncio client: the command-status read model (and, later,
timelines and API-key lookups)."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

COMMAND_KEY = "streamfold:command:{command_id}"
COMMAND_TTL_S = 7 * 24 * 3600


REDIS_TIMEOUT_S = 2.0
"""Connect and per-command socket timeout: an unreachable Redis fails a request in
seconds (a 503) instead of hanging it."""


def open_redis(url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> Redis:
    return Redis.from_url(
        url,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )


async def get_command_result(redis: Redis, command_id: str) -> dict[str, Any] | None:
    raw = await redis.get(COMMAND_KEY.format(command_id=command_id))
    return None if raw is None else json.loads(raw)
