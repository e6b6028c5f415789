"""Process assembly: one `Role` per process (``streamfold worker --role``, ``api``).

``streamfold serve`` starts every role as a child process and supervises them
(``deploy/supervisor.py``); with a ClickHouse server DSN the same roles are separate
deployables. What each role runs is in ``deploy/roles/<role>.py``; this module holds what
they share: logging, topics, signals, and the exit deadline of a failed role.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import sys
import threading
import time

import structlog

from connectors import metrics
from connectors.kafka import ensure_topics
from connectors.redis import open_redis
from deploy.roles import Role
from pipeline.common.settings import Settings
from pipeline.common.topics import project_topics
from pipeline.write.aggregates import changelog_topics
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
            structlog.contextvars.merge_contextvars,  # a request's correlation id
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # exc_info=True as the traceback's text (the renderer alone prints "True")
            structlog.processors.format_exc_info,
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


async def run_role(settings: Settings, role: Role) -> None:
    """Run one role until SIGINT/SIGTERM, then stop it in order and log ``stopped``.

    Every role flushes its producers, commits and leaves its consumer groups, and closes
    its stores before returning; an error in a consumer stops the process (non-zero exit:
    the supervisor restarts it).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    stop = _stop_on_signals()
    heartbeat = asyncio.create_task(_heartbeat(role))
    if role is not Role.API:
        metrics.serve_port(settings.metrics_port)
    await prepare_topics(settings)
    redis = open_redis(settings.redis_url)
    codec = AvroCodec(SchemaRegistry.load())
    try:
        # imported here: a process loads only its own role (the workers no HTTP server)
        run = importlib.import_module(f"deploy.roles.{role.value}").run
        settle_garbage_collector()
        await run(settings, stop, redis, codec)
    except BaseException:
        exit_within(FAILED_EXIT_DEADLINE_S)
        raise
    finally:
        heartbeat.cancel()
        await redis.aclose()
        log.info("stopped", role=str(role))


async def _heartbeat(role: Role) -> None:
    """``streamfold_role_heartbeat_seconds`` every ``HEARTBEAT_S`` while the loop runs: the
    RoleDown alert (``deploy/prometheus/alerts.yml``) fires when it stops moving."""
    beat = metrics.ROLE_HEARTBEAT.labels(str(role))
    while True:
        beat.set(time.time())
        await asyncio.sleep(metrics.HEARTBEAT_S)


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two young collections (CPython's default: 700)."""


def settle_garbage_collector() -> None:
    """Leave what the process has loaded so far (modules, classes, the schema registry)
    out of every later collection (``gc.freeze``), and collect the young generation every
    ``GC_YOUNG_THRESHOLD`` allocations instead of every 700.

    Why: a batch consumer allocates a few objects per record (the client's message, our
    ``Record``) and keeps a batch of up to 50,000 alive, so CPython's defaults ran a
    collection every few hundred records and full ones over everything loaded. perf on the
    sinks process at 15,000 events/s: 22 % of its CPU in ``gc_collect_main`` and its
    visitors. Nothing here relies on collection for correctness (cycles are still
    collected, later); the cost is memory held a little longer.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


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


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
