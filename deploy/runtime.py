"""Process assembly: what each role's process runs (``streamfold worker --role``, ``api``).

A process runs one `Role`. ``streamfold serve`` starts every role as a child process and
supervises them (``deploy/supervisor.py``); with a ClickHouse server DSN the same roles
are separate deployables. chdb locks its directory to one process, so with ``chdb://``
the sinks process owns the engine and answers everyone else's queries
(``connectors/store.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator

import structlog
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from api.app import create_api
from api.deps import Services
from connectors import metrics
from connectors.clickhouse import ClickHouse
from connectors.commands import CommandBus
from connectors.kafka import AsyncProducer, ensure_topics
from connectors.keys import KeyResolver
from connectors.ratelimit import Buckets, Limit
from connectors.redis import open_redis
from connectors.store import QueryPool, QueryStore, StoreClient, StoreServer, socket_path
from deploy.roles import Role
from deploy.secrets import claim_keys, with_jwt_secret
from pipeline.aggregates import changelog_topics
from pipeline.app import (
    BatchPipeline,
    create_app,
    create_projections,
    create_sinks,
    create_validation,
    recorder,
)
from pipeline.ingest import Ingest
from pipeline.projections import migrate
from pipeline.settings import Settings
from pipeline.topics import project_topics
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistry

log = structlog.get_logger(__name__)


def configure_logging(level: str = "INFO") -> None:
    """structlog key=value lines on stderr; stdlib loggers (Faust, aiokafka) at WARNING."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


async def prepare_topics(settings: Settings) -> None:
    """Create the project's topics and Faust's changelogs, idempotently."""
    created = await asyncio.to_thread(
        ensure_topics,
        settings.kafka_bootstrap,
        [*project_topics(), *changelog_topics(settings.app_id)],
        partitions=settings.topic_partitions,
        replication=settings.topic_replication_factor,
    )
    if created:
        log.info("topics created", topics=created)


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


def open_query_store(settings: Settings) -> QueryStore:
    """What the API queries: the store process's socket for ``chdb://`` (the engine is
    that process's alone), else a clickhouse-connect facade of its own."""
    if settings.clickhouse_dsn.startswith("chdb:"):
        return StoreClient(socket_path(settings.home))
    return ClickHouse.open(settings.clickhouse_dsn)


async def run_role(settings: Settings, role: Role) -> None:
    """Run one role until SIGINT/SIGTERM, then stop it in order and log ``stopped``.

    Every role flushes its producers, commits and leaves its consumer groups, and closes
    its stores before returning; an error in a consumer stops the process (non-zero exit:
    the supervisor restarts it).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    stop = _stop_on_signals()
    if role is not Role.API:
        metrics.serve_port(settings.metrics_port)
    await prepare_topics(settings)
    redis = open_redis(settings.redis_url)
    codec = AvroCodec(SchemaRegistry.load())
    try:
        if role is Role.SINKS:
            await _run_sinks(settings, stop, redis, codec)
        elif role is Role.COMMANDS:
            await _run_commands(settings, stop, redis, codec)
        elif role is Role.VALIDATION:
            await _run_batches(stop, [create_validation(settings, codec=codec, redis=redis)])
        else:
            await _run_api(settings, stop, redis, codec)
    except BaseException:
        exit_within(FAILED_EXIT_DEADLINE_S)
        raise
    finally:
        await redis.aclose()
        log.info("stopped", role=str(role))


FAILED_EXIT_DEADLINE_S = 30.0


def exit_within(seconds: float, code: int = 1) -> None:
    """End the process with ``code`` after ``seconds`` even if its shutdown hangs.

    A role that failed has to exit for the supervisor (or the orchestrator) to restart
    it; one was seen stuck for good in asyncio's task cancellation after its consumer
    failed (NOTES.md, "Next steps"). A daemon timer does not hold up a normal exit.
    """
    timer = threading.Timer(seconds, os._exit, (code,))
    timer.daemon = True
    timer.start()


async def _run_sinks(
    settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec
) -> None:
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
        sinks = await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn)
        connections.append(sinks)
        staging = await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn, session=True)
        connections.append(staging)
        stages = [
            create_projections(settings, codec=codec, clickhouse=clickhouse, redis=redis),
            create_sinks(settings, codec=codec, clickhouse=sinks, staging=staging),
        ]
        serving = None
        if settings.clickhouse_dsn.startswith("chdb:"):
            queries = [
                await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn)
                for _ in range(STORE_QUERY_CONNECTIONS)
            ]
            connections.extend(queries)
            server = StoreServer(QueryPool(queries), socket_path(settings.home))
            serving = asyncio.create_task(server.serve(stop), name="store")
        try:
            await _run_batches(stop, stages)
        finally:
            stop.set()
            if serving is not None:
                await serving
    finally:
        for connection in reversed(connections):
            connection.close()


async def _run_commands(
    settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec
) -> None:
    keys = await asyncio.to_thread(claim_keys, settings)
    pipeline = create_app(settings, codec=codec, redis=redis, claim_keys=keys)
    await pipeline.app.start()
    log.info("commands started", guarantee=settings.processing_guarantee)
    try:
        await stop.wait()
    finally:
        await pipeline.app.stop()


async def _run_batches(stop: asyncio.Event, stages: list[BatchPipeline]) -> None:
    """Run batch pipelines until ``stop``; a failed one stops the rest and re-raises."""
    batch_stop = asyncio.Event()
    tasks = [asyncio.create_task(stage.run(batch_stop)) for stage in stages]
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        batch_stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.error("batch consumers failed; stopping", error=repr(result))
            raise result


async def _run_api(settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec) -> None:
    settings = with_jwt_secret(settings, create=False)
    keys = await asyncio.to_thread(claim_keys, settings)
    store = await asyncio.to_thread(open_query_store, settings)
    bus = CommandBus(
        settings.kafka_bootstrap,
        client_id="streamfold-api",
        timeout_s=settings.command_timeout_s,
        claim_keys=keys,
    )
    await bus.start()
    ingest_producer = AsyncProducer(
        settings.kafka_bootstrap,
        client_id="streamfold-ingest",
        delivery_timeout_s=settings.command_timeout_s,
        **{"linger.ms": 10},
    )
    try:
        ingest = Ingest(
            ingest_producer,
            Buckets(redis),
            recorder=recorder(settings, codec=codec, redis=redis),
            per_system=Limit(settings.ingest_rate_per_s, settings.ingest_burst),
            per_partner=Limit(settings.partner_ingest_rate_per_s, settings.partner_ingest_burst),
        )
        services = Services(
            settings=settings,
            clickhouse=store,
            redis=redis,
            bus=bus,
            keys=KeyResolver(redis, ttl_s=settings.key_cache_ttl_s),
            ingest=ingest,
        )
        app = create_api(services)
        if settings.http == "granian":
            await _serve_granian(app, settings, stop)
        else:
            await _serve_uvicorn(app, settings, stop)
    finally:
        await bus.stop()
        ingest_producer.close()
        if isinstance(store, StoreClient):
            await store.aclose()
        else:
            store.close()


async def _serve_uvicorn(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", http=settings.http
    )
    server = _Server(config)
    serving = asyncio.create_task(
        server.serve(sockets=[_shared_socket(settings.api_host, settings.api_port)]),
        name="api",
    )
    log.info("api listening", url=settings.api_url, server="uvicorn", http=settings.http)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True  # drain open requests, then return
    stopping.cancel()
    await serving


async def _serve_granian(app: FastAPI, settings: Settings, stop: asyncio.Event) -> None:
    """granian's embedded server (upstream marks it experimental) on this process's loop;
    its socket is SO_REUSEPORT like :func:`_shared_socket`'s, so API processes share the
    port the same way."""
    from granian.constants import Interfaces
    from granian.server.embed import Server
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # uvicorn applies this itself (Config.proxy_headers): the client address behind a
    # trusted proxy comes from X-Forwarded-For, and the per-address login limit keys on it.
    # Without it every client behind the proxy shared one login bucket under granian.
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    server = Server(
        ProxyHeadersMiddleware(app, trusted_hosts=trusted),
        address=settings.api_host,
        port=settings.api_port,
        interface=Interfaces.ASGINL,
        backlog=2048,
        websockets=False,
        log_enabled=False,
    )
    serving = asyncio.create_task(server.serve(), name="api")
    log.info("api listening", url=settings.api_url, server="granian")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.stop()
    stopping.cancel()
    await serving


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket every API process of this host binds together: the kernel
    spreads connections over them (SO_REUSEPORT, Linux >= 3.9)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: after draining it re-raises the signal it
    caught (``Server.capture_signals``), so the process died with 143 before this module's
    shutdown ran (no producer flush, no group leave, chdb not closed: every deploy was a
    crash recovery). Signals set ``run``'s stop event instead, and ``run`` stops
    everything in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
