"""Liveness and readiness (for load balancers and ``make up``).

Readiness includes "the pipeline moves": a batch consumer with records waiting that has
not advanced for ``stall_threshold_s`` turns ``/readyz`` red. A sink retrying a batch the
store refuses, or a store down, used to leave it green while nothing was stored.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import Services, ServicesDep
from connectors.batch import BatchConsumer
from connectors.kafka import group_positions
from pipeline.common import topics
from pipeline.projections import catalog, groups, registry

log = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])


CHECK_TIMEOUT_S = 5.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


READY_CACHE_S = 1.0
"""How long one readiness answer is reused. /readyz is public and one fresh answer costs
~70 Kafka round trips (lag of 9 groups' partitions): a flood of probes costs one check a
second, and every answer says when it was checked (``checked_at``, Unix seconds)."""


Positions = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (committed, end)


@dataclass
class StallWatch:
    """Which consumer groups have records waiting and have not advanced for
    ``threshold_s`` seconds.

    Advancing is known two ways. Where the API runs beside the group's members
    (``streamfold serve``) each ``BatchConsumer`` records its own progress (``stalled_s``:
    since its last commit or empty poll): any member stuck that long, with records waiting
    in its group, is a stall. An API process without members (``streamfold api`` beside
    separate ``worker`` processes, which serve no HTTP) watches the group's committed
    offsets across its checks instead: unchanged for ``threshold_s`` while records wait
    is a stall. That needs probes at least every ``threshold_s`` (load balancers probe
    every few seconds), a fresh API process needs ``threshold_s`` of them before it can
    say so, and one stuck member goes unseen while others of its group move.
    """

    threshold_s: float
    _seen: dict[str, tuple[tuple[Any, ...], float]] = field(default_factory=dict)

    def check(
        self, group: str, positions: Positions, now: float, members_stalled_s: Sequence[float]
    ) -> tuple[int, float] | None:
        """(records waiting, seconds without progress) if ``group`` is stalled, else None.

        ``positions``: the group's committed offsets and end offsets; ``now``:
        ``time.monotonic()``; ``members_stalled_s``: ``stalled_s()`` of this process's
        members of the group (empty when it runs none).
        """
        committed = tuple(sorted((tp, c) for tp, (c, _) in positions.items()))
        seen = self._seen.get(group)
        if seen is None or seen[0] != committed:
            seen = self._seen[group] = (committed, now)
        waiting = sum(max(0, end - c) for c, end in positions.values())
        if waiting == 0:
            return None
        stalled = max(members_stalled_s) if members_stalled_s else now - seen[1]
        return (waiting, stalled) if stalled >= self.threshold_s else None


@dataclass
class _Readiness:
    threshold_s: float
    at: float = -math.inf
    answer: tuple[int, dict[str, Any]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stalls: StallWatch = field(init=False)

    def __post_init__(self) -> None:
        self.stalls = StallWatch(self.threshold_s)


@router.get("/readyz")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    """200 when Kafka, Redis and ClickHouse answer, the workers' consumer lag is known and
    no batch consumer is stalled; 503 ``application/problem+json`` otherwise:
    ``/problems/not-ready`` naming the checks that failed, or ``/problems/stalled`` naming
    each consumer group that has records waiting and has not advanced for
    ``stall_threshold_s`` (``stalled``: group, records ``waiting``, ``stalled_s``), never
    an internal error text. ``lag`` is records per topic not yet committed by its group;
    ``checked_at`` (Unix seconds) when this answer was made (reused for up to
    ``READY_CACHE_S``)."""
    state = request.app.state
    if not hasattr(state, "readiness"):
        state.readiness = _Readiness(services.settings.stall_threshold_s)
    cached: _Readiness = state.readiness
    # batch consumers running in this process beside the API (a test puts some here; in
    # the process-per-role layout there are none)
    members: Sequence[BatchConsumer] = getattr(state, "batch_consumers", ())
    async with cached.lock:  # concurrent probes share one check
        if cached.answer is None or time.monotonic() - cached.at > READY_CACHE_S:
            cached.answer = await _check(services, cached.stalls, members)
            cached.at = time.monotonic()
    status, body = cached.answer
    media = "application/problem+json" if status != 200 else "application/json"
    return JSONResponse(body, status_code=status, media_type=media)


async def _batch_groups(services: Services) -> dict[str, list[str]]:
    """The batch consumers' groups (``pipeline/projections/groups.py``: validation and sinks), with
    the running projection versions from the catalog; without it (ClickHouse not
    answering: its own check fails) the projections' first versions."""
    settings = services.settings
    try:
        versions = await asyncio.wait_for(catalog.versions(services.clickhouse), CHECK_TIMEOUT_S)
    except Exception as exc:  # the clickhouse check below reports it
        log.info("projection catalog not read", error=repr(exc))
        versions = []
    projections = registry.installed(tuple(settings.projection_plugins))
    roles = groups.by_role(settings.app_id, projections, versions)
    return {**roles["validation"], **roles["sinks"]}


async def _check(
    services: Services, stalls: StallWatch, members: Sequence[BatchConsumer]
) -> tuple[int, dict[str, Any]]:
    settings = services.settings
    # which per-event path this API process runs: the compiled core, or the Python path
    # (core not built; issue 21: "/readyz and streamfold status say so")
    core = getattr(services.ingest, "core", None)
    checks: dict[str, Any] = {"edge": "python" if core is None else "compiled"}
    checked_at = time.time()
    # the batch consumers' groups, then the Faust command group: all watched for stalls
    batch_groups = await _batch_groups(services)
    for member in members:
        batch_groups.setdefault(member.group_id, list(member.topics))
    positions: dict[str, Positions] = {}

    def all_positions() -> None:
        bootstrap = settings.kafka_bootstrap
        positions[settings.app_id] = group_positions(
            bootstrap, settings.app_id, topics.COMMAND_TOPICS
        )
        for group, group_topics in batch_groups.items():
            positions[group] = group_positions(bootstrap, group, group_topics)

    async def kafka() -> None:
        await asyncio.to_thread(all_positions)
        lag: dict[str, int] = {}
        for group_positions_ in positions.values():
            per_topic: dict[str, int] = {}
            for (topic, _), (committed, end) in group_positions_.items():
                per_topic[topic] = per_topic.get(topic, 0) + max(0, end - committed)
            lag.update(per_topic)
        checks["lag"] = lag

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
    now = time.monotonic()
    stalled = []
    for group in [*batch_groups, settings.app_id]:
        own = [m.stalled_s() for m in members if m.group_id == group]
        found = stalls.check(group, positions[group], now, own)
        if found is not None:
            waiting, for_s = found
            stalled.append({"group": group, "waiting": waiting, "stalled_s": round(for_s)})
    if stalled:
        log.warning("consumer groups stalled", stalled=stalled)
        return 503, {
            "type": "/problems/stalled",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "; ".join(
                f"consumer group {s['group']} has {s['waiting']} records waiting and has not "
                f"advanced for {s['stalled_s']} s"
                for s in stalled
            ),
            "stalled": stalled,
            "checks": checks,
            "checked_at": checked_at,
        }
    return 200, {"status": "ready", "checks": checks, "checked_at": checked_at}
