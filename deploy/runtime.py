"""Process assembly: what ``streamfold serve``, ``worker`` and ``api`` run.

With the embedded ClickHouse (chdb locks its directory to one process) ``serve`` hosts
the API and the agents in one event loop around one engine; with a server DSN, ``api``
and ``worker`` are separate processes that scale out (more workers = more consumers in
the Faust group; more API instances behind a load balancer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

import structlog
import uvicorn

from api.app import create_api
from api.deps import Services
from connectors.batch import BatchConsumer
from connectors.clickhouse import ClickHouse
from connectors.commands import CommandBus
from connectors.ingest import Ingest
from connectors.kafka import AsyncProducer, ensure_topics
from connectors.keys import KeyResolver
from connectors.ratelimit import Buckets, Limit
from connectors.redis import open_redis
from deploy.secrets import claim_keys, with_jwt_secret
from pipeline.aggregates import changelog_topics
from pipeline.app import create_app, create_projections, create_tracking
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


async def prepare(settings: Settings) -> ClickHouse:
    """Topics and tables, idempotently; returns the ClickHouse facade."""
    created = await asyncio.to_thread(
        ensure_topics,
        settings.kafka_bootstrap,
        [*project_topics(), *changelog_topics(settings.app_id)],
        partitions=settings.topic_partitions,
        replication=settings.topic_replication_factor,
    )
    if created:
        log.info("topics created", topics=created)
    clickhouse = await asyncio.to_thread(ClickHouse.open, settings.clickhouse_dsn)
    await migrate(clickhouse)
    return clickhouse


async def run(settings: Settings, *, api: bool, worker: bool) -> None:
    """Run the API and/or the agents until SIGINT/SIGTERM, then stop in reverse order:
    HTTP drained, result waiter and ingest producer flushed, tracking consumers committed
    and closed (leaving their groups), Faust stopped (producer flushed, offsets committed,
    group left), Redis and ClickHouse closed, then the ``stopped`` log line and exit 0."""
    settings.home.mkdir(parents=True, exist_ok=True)
    if api:
        settings = with_jwt_secret(settings, create=False)
    clickhouse = await prepare(settings)
    keys = await asyncio.to_thread(claim_keys, settings)
    redis = open_redis(settings.redis_url)
    codec = AvroCodec(SchemaRegistry.load())
    pipeline = None
    stop = _stop_on_signals()
    batch_stop = asyncio.Event()
    batch_tasks: list[asyncio.Task[None]] = []
    batch_consumers: list[BatchConsumer] = []
    bus = None
    ingest_producer = None
    try:
        if worker:
            pipeline = create_app(
                settings, codec=codec, clickhouse=clickhouse, redis=redis, claim_keys=keys
            )
            await pipeline.app.start()

            for name, stages in (
                ("projections", create_projections),
                ("tracking", create_tracking),
            ):
                built = stages(settings, codec=codec, clickhouse=clickhouse, redis=redis)
                batch_consumers.extend(built.consumers)
                task = asyncio.create_task(built.run(batch_stop), name=name)
                task.add_done_callback(lambda task: _stop_if_failed(task, stop))
                batch_tasks.append(task)
            log.info("worker started", guarantee=settings.processing_guarantee)
        if api:
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
            ingest = Ingest(
                ingest_producer,
                Buckets(redis),
                per_system=Limit(settings.ingest_rate_per_s, settings.ingest_burst),
                per_partner=Limit(
                    settings.partner_ingest_rate_per_s, settings.partner_ingest_burst
                ),
            )
            services = Services(
                settings=settings,
                clickhouse=clickhouse,
                redis=redis,
                bus=bus,
                keys=KeyResolver(redis, ttl_s=settings.key_cache_ttl_s),
                ingest=ingest,
            )
            app = create_api(services)
            # /readyz reads their progress: a member stuck on a batch turns it red
            app.state.batch_consumers = batch_consumers
            config = uvicorn.Config(
                app,
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
            log.info("api listening", url=settings.api_url)
            server = _Server(config)
            serving = asyncio.create_task(server.serve(), name="api")
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True  # drain open requests, then return
            stopping.cancel()
            await serving
        else:
            await stop.wait()
    finally:
        if bus is not None:
            await bus.stop()
        if ingest_producer is not None:
            ingest_producer.close()
        batch_stop.set()
        for task in batch_tasks:
            await task
        if pipeline is not None:
            await pipeline.app.stop()
        await redis.aclose()
        clickhouse.close()
        log.info("stopped")


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


def _stop_if_failed(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A failed batch consumer stops the whole process (fail loudly, never skip): the
    normal shutdown runs, then re-raises the error (a non-zero exit)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("batch consumers failed; stopping", stage=task.get_name(),
                  error=repr(task.exception()))  # fmt: skip
        stop.set()
