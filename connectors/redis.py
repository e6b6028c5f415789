"""Redis through redis-py's asyncio client: the command-status read model (and, later,
timelines and API-key lookups)."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis

COMMAND_KEY = "streamfold:command:{command_id}"
COMMAND_TTL_S = 7 * 24 * 3600


REDIS_TIMEOUT_S = 2.0
"""Connect and per-command socket timeout: an unreachable Redis fails a request in
seconds (a 503) instead of hanging it."""


MAX_CONNECTIONS = 256
"""Connections per client. redis-py's default pool raises MaxConnectionsError past 100
commands in flight (found by bench/timelines.py: 200 live-feed subscribers connecting at
once); this pool makes a caller wait up to the timeout for a connection instead."""


def open_redis(url: str, *, timeout_s: float = REDIS_TIMEOUT_S) -> Redis:
    """A client on a blocking pool of ``MAX_CONNECTIONS``; connect, command and
    wait-for-a-connection timeouts of ``timeout_s`` seconds."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_s,
        decode_responses=False,
        health_check_interval=30,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
    )
    return Redis(connection_pool=pool)


async def get_command_result(redis: Redis, command_id: str) -> dict[str, Any] | None:
    raw = await redis.get(COMMAND_KEY.format(command_id=command_id))
    return None if raw is None else orjson.loads(raw)
