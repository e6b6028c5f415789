"""The sinks role: the read models, the tracking sinks into ClickHouse and, with a
``chdb://`` DSN, the store itself (the only process that opens the engine; every other
process queries through its socket, ``connectors/store.py``). One per install."""

from __future__ import annotations

import asyncio
import time

import structlog
from redis.asyncio import Redis

from connectors.clickhouse import ClickHouse
from connectors.store import QueryPool, StoreServer, socket_path
from deploy.roles.batches import run_batches
from pipeline.common.settings import Settings
from pipeline.projections import migrate, registry
from pipeline.projections.bootstrap import create_projections
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)


async def run(settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec) -> None:
    """The read models, the tracking sinks and (``chdb://``) the store socket, each on a
    ClickHouse connection of its own.

    clickhouse-connect's chdb client runs every call under one lock
    (``clickhouse_connect/driver/_backend/chdb_backend.py``), while chdb itself runs
    queries of different connections to one engine in parallel (``chdb.connect``). Shared,
    one connection made every API query wait behind whichever insert was running: a
    50,000-row tracking insert, or the users projection's. Measured (one
    ``GET /api/admin/users/{id}`` every 50 ms during `/v1/batch` load at B=1000): p50 123
    -> 43 ms; the tail stayed at seconds (p99 6.5 -> 5.2 s), the CPU being saturated.
    """
    clickhouse = await open_store(settings)
    connections = [clickhouse]
    try:
        staging = await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn, session=True)
        connections.append(staging)
        stages = [
            create_projections(
                settings, codec=codec, clickhouse=clickhouse, redis=redis, staging=staging
            ),
        ]
        serving = None
        if settings.clickhouse_dsn.startswith("chdb:"):
            tables = registry.analyst_tables(settings.projection_plugins)
            queries = [
                await asyncio.to_thread(
                    ClickHouse.open, settings.clickhouse_dsn, analyst_tables=tables
                )
                for _ in range(STORE_QUERY_CONNECTIONS)
            ]
            connections.extend(queries)
            server = StoreServer(QueryPool(queries), socket_path(settings.home))
            serving = asyncio.create_task(server.serve(stop), name="store")
        try:
            await run_batches(stop, stages)
        finally:
            stop.set()
            if serving is not None:
                await serving
    finally:
        for connection in reversed(connections):
            connection.close()


async def open_store(settings: Settings) -> ClickHouse:
    """The ClickHouse facade with the project's tables migrated.

    A ``chdb://`` engine is locked by one process: a store process killed a moment ago
    (its supervisor SIGKILLed, the children following by PDEATHSIG) can still hold it while
    its successor starts, so a held lock is asked again for up to ``_LOCK_WAIT_S``.

    Raises:
        ConnectorError: the engine stayed locked (another store runs on this home) or the
            server is unreachable.
    """
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            clickhouse = await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn)
            break
        except Exception as exc:
            if not _is_lock_held(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    await migrate(clickhouse)
    return clickhouse


_LOCK_WAIT_S = 30.0
# connections answering the store socket's queries (chdb runs them in parallel; one
# connection answered them one at a time: ``connectors.store.QueryPool``)
STORE_QUERY_CONNECTIONS = 4


def _is_lock_held(exc: BaseException) -> bool:
    text = repr(exc).lower()
    return "lock" in text and ("held" in text or "another" in text or "locked" in text)
