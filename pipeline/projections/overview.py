"""What ``streamfold projections list`` and ``GET /api/admin/projections`` show: every
version of every projection with its state, its lag per partition (the topics' high
watermarks against the version's checkpoint) and the runner's live figures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from connectors.kafka import end_offsets
from pipeline.projections import catalog
from pipeline.projections.catalog import Offsets, State, Version
from pipeline.projections.projection import Projection, Store

if TYPE_CHECKING:
    from connectors.store import QueryStore


async def overview(
    store: QueryStore,
    redis: Redis,
    bootstrap: str,
    projections: Sequence[Projection],
    *,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per version that is not dropped (of projection ``name`` only, if given:
    the topics' ends are asked of Kafka for its topics alone), by projection then version:

    ``name``, ``version``, ``state``, ``paused`` (bool: ``Action.PAUSE``), ``store``,
    ``topics``, ``source``, ``installed``, ``rebuildable``, ``lag`` (records not applied,
    all partitions), ``partitions`` (each ``{"topic", "partition", "applied", "end",
    "lag"}``; ``applied`` -1: none yet),
    ``events_per_s``, ``applied`` and ``dead_lettered`` (since the runner started, None
    when it publishes nothing), ``last_error``, ``created_at``, ``updated_at`` (ISO-8601).

    Raises what the store, Redis or Kafka raise when they do not answer.
    """
    installed = {p.name: p for p in projections}
    versions = [
        v for v in await catalog.versions(store)
        if v.state is not State.DROPPED and name in (None, v.projection)
    ]  # fmt: skip
    checkpoints = await catalog.checkpoints(store)
    topics = sorted({t for v in versions if v.projection in installed
                     for t in installed[v.projection].topics})  # fmt: skip
    ends_list = await asyncio.gather(
        *(asyncio.to_thread(end_offsets, bootstrap, t) for t in topics)
    )
    ends = {t: e for t, e in zip(topics, ends_list, strict=True)}
    out = []
    for v in versions:
        projection = installed.get(v.projection)
        applied = await _applied(redis, projection, v, checkpoints)
        out.append(await _row(redis, v, projection, applied, ends))
    return out


async def _applied(
    redis: Redis,
    projection: Projection | None,
    v: Version,
    checkpoints: dict[tuple[str, int], Offsets],
) -> Offsets:
    if projection is not None and projection.store is Store.REDIS:
        key = catalog.CHECKPOINT_KEY.format(projection=v.projection, version=v.version)
        return catalog.redis_checkpoint(await redis.hgetall(key))
    return checkpoints.get((v.projection, v.version), {})


async def _row(
    redis: Redis,
    v: Version,
    projection: Projection | None,
    applied: Offsets,
    ends: dict[str, dict[int, int]],
) -> dict[str, Any]:
    partitions = []
    if projection is not None:
        for topic in projection.topics:
            for partition, end in sorted(ends.get(topic, {}).items()):
                done = applied.get((topic, partition), -1)
                partitions.append({"topic": topic, "partition": partition, "applied": done,
                                   "end": end, "lag": max(0, end - done - 1)})  # fmt: skip
    raw = await redis.hgetall(catalog.STATS_KEY.format(projection=v.projection, version=v.version))
    stats = {k.decode(): val.decode() for k, val in raw.items()}
    running = v.state in (State.LIVE, State.BUILDING, State.PROMOTING)
    paused = bool(await redis.exists(catalog.PAUSED_KEY.format(projection=v.projection,
                                                                version=v.version)))  # fmt: skip
    return {
        "name": v.projection,
        "version": v.version,
        "state": str(v.state),
        "paused": paused,
        "store": str(projection.store) if projection else None,
        "topics": list(projection.topics) if projection else [],
        "source": v.source,
        "installed": projection is not None,
        "rebuildable": bool(projection and projection.rebuildable),
        "lag": sum(p["lag"] for p in partitions) if running else None,
        "partitions": partitions,
        "events_per_s": float(stats["events_per_s"]) if "events_per_s" in stats else None,
        "applied": int(stats["applied"]) if "applied" in stats else None,
        "dead_lettered": int(stats["dead_lettered"]) if "dead_lettered" in stats else None,
        "last_error": v.last_error or stats.get("last_error", ""),
        "created_at": v.created_at.isoformat(),
        "updated_at": v.updated_at.isoformat(),
    }
