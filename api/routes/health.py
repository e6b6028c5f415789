"""Liveness and readiness (for load balancers and ``make up``)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import Services, ServicesDep
from connectors.kafka import consumer_lag
from pipeline import topics

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])


TRACKING_GROUPS = {  # consumer group suffix -> its topic (pipeline.app.create_tracking)
    "tracking-validation": topics.TRACKING_RAW,
    "tracking-sink": topics.TRACKING_EVENTS,
    "tracking-rejections": topics.TRACKING_DLQ,
}
CHECK_TIMEOUT_S = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


READY_CACHE_S = 1.0
"""How long one readiness answer is reused. /readyz is public and one fresh answer costs
~70 Kafka round trips (lag of 9 groups' partitions): a flood of probes costs one check a
second, and every answer says when it was checked (``checked_at``, Unix seconds)."""


@dataclass
class _Readiness:
    at: float = -math.inf
    answer: tuple[int, dict[str, Any]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@router.get("/readyz")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    """200 when Kafka, Redis and ClickHouse answer and the workers' consumer lag is known;
    503 (problem+json shape) naming what failed otherwise. ``lag`` is records per topic
    not yet committed by the worker group; ``checked_at`` when this answer was made
    (reused for up to ``READY_CACHE_S``)."""
    state = request.app.state
    if not hasattr(state, "readiness"):
        state.readiness = _Readiness()
    cached: _Readiness = state.readiness
    async with cached.lock:  # concurrent probes share one check
        if cached.answer is None or time.monotonic() - cached.at > READY_CACHE_S:
            cached.answer = await _check(services)
            cached.at = time.monotonic()
    status, body = cached.answer
    media = "application/problem+json" if status != 200 else "application/json"
    return JSONResponse(body, status_code=status, media_type=media)


async def _check(services: Services) -> tuple[int, dict[str, Any]]:
    settings = services.settings
    checks: dict[str, Any] = {}
    checked_at = time.time()

    def all_lag() -> dict[str, int]:
        lag = consumer_lag(settings.kafka_bootstrap, settings.app_id, topics.COMMAND_TOPICS)
        for topic in topics.PROJECTED_TOPICS:
            group = topics.projection_group(settings.app_id, topic)
            lag.update(consumer_lag(settings.kafka_bootstrap, group, [topic]))
        for suffix, topic in TRACKING_GROUPS.items():
            group = f"{settings.app_id}-{suffix}"
            lag.update(consumer_lag(settings.kafka_bootstrap, group, [topic]))
        return lag

    async def kafka() -> None:
        checks["lag"] = await asyncio.to_thread(all_lag)

    async def redis() -> None:
        await services.redis.ping()

    async def clickhouse() -> None:
        if not await services.clickhouse.ping():
            raise RuntimeError("SELECT 1 failed")

    failed: list[str] = []
    for name, probe in (("kafka", kafka), ("redis", redis), ("clickhouse", clickhouse)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # a probe's failure is the answer, not an error
            # the reason goes to the log; a public probe names only what failed
            log.warning("readiness check failed", check=name, error=repr(exc))
            failed.append(name)
            checks[name] = "failed"
    if failed:
        return 503, {
            "type": "/problems/not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "not answering: " + ", ".join(failed),
            "checks": checks,
            "checked_at": checked_at,
        }
    return 200, {"status": "ready", "checks": checks, "checked_at": checked_at}
