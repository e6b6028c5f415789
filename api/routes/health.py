"""Liveness and readiness (for load balancers and ``make up``)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from connectors.kafka import consumer_lag
from pipeline import topics

router = APIRouter(tags=["health"])

WORKER_TOPICS = (
    topics.USER_COMMANDS,
    topics.USER_RESERVATIONS,
    topics.USER_EVENTS,
    topics.PARTNER_COMMANDS,
    topics.PARTNER_EVENTS,
    topics.COMMAND_RESULTS,
)
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


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when Kafka, Redis and ClickHouse answer and the workers' consumer lag is known;
    503 (problem+json shape) naming what failed otherwise. ``lag`` is records per topic
    not yet committed by the worker group."""
    settings = services.settings
    checks: dict[str, Any] = {}

    def all_lag() -> dict[str, int]:
        lag = consumer_lag(settings.kafka_bootstrap, settings.app_id, WORKER_TOPICS)
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

    failed: dict[str, str] = {}
    for name, probe in (("kafka", kafka), ("redis", redis), ("clickhouse", clickhouse)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:  # a probe's failure is the answer, not an error
            failed[name] = str(exc) or type(exc).__name__
            checks[name] = "failed"
    if failed:
        body = {
            "type": "/problems/not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "; ".join(f"{k}: {v}" for k, v in failed.items()),
            "checks": checks,
        }
        return JSONResponse(body, status_code=503, media_type="application/problem+json")
    return JSONResponse({"status": "ready", "checks": checks})
