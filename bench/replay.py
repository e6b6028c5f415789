"""Replay speed: how fast a projection is built from history, and how long a promotion takes.

Fills two private topics once (6 partitions each) with ``--events`` envelopes each: user
events (the ``event_log`` archive's input) and ``TrackingEventRecorded`` events. Then, per
run, on a fresh chdb engine and the project's own code:

- ``event_log``, the example plugin ``partner_activity`` (a tracking-volume projection in
  SQL) and ``tracking_events`` (the tracking sink) on the projection runner, one at a time:
  version 1 built from the earliest offset (the replay a new install does), then version 2
  rebuilt beside it (``projections rebuild``), then promoted (``projections promote``: the
  table exchange, timed from the request to the catalog showing it live). The tracking
  projections take the tracking sink's batches (50,000 records or 200 ms), the others
  ``--batch-rows``;
- the ceiling in the same run: a bare confluent-kafka consumer reading each topic, nothing
  decoded; each projection's ratio is to its own topic's.

Usage: python bench/replay.py [--events 1000000] [--runs 3] [--projections tracking_events ...]
Prints a table; writes bench/results/local/replay-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import kafka_io  # noqa: E402
from bench.stats import write_results  # noqa: E402
from connectors.clickhouse import ClickHouse  # noqa: E402
from connectors.kafka import (  # noqa: E402
    AsyncProducer,
    TopicSpec,
    end_offsets,
    ensure_topics,
)  # fmt: skip
from connectors.redis import open_redis  # noqa: E402
from deploy.localstack import LocalStack  # noqa: E402
from pipeline.common import compiled  # noqa: E402
from pipeline.common.deadletter import DeadLetters  # noqa: E402
from pipeline.common.topics import PROJECTIONS_CONTROL, PROJECTIONS_DLQ, project_topics  # noqa: E402
from pipeline.domain.tracking import TrackedEvent, recorded_envelope  # noqa: E402
from pipeline.projections import catalog, event_log, migrate  # noqa: E402
from pipeline.projections.control import Action, Request  # noqa: E402
from pipeline.projections.projection import Projection  # noqa: E402
from pipeline.projections.runner import Deps, ProjectionRunner  # noqa: E402
from pipeline.projections.tracking.sink import SINK  # noqa: E402
from schemas.codec import AvroCodec  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

PARTITIONS = 6


def fill(
    bootstrap: str, topic: str, count: int, make: Callable[[int], tuple[bytes, bytes]]
) -> None:
    ensure_topics(bootstrap, [TopicSpec(topic)], partitions=PARTITIONS, replication=1)
    kafka_io.fill(bootstrap, topic, count, make)


def user_event(codec: AvroCodec, i: int) -> tuple[bytes, bytes]:
    """UserLastLoginUpdated envelopes: ten versions of each of count/10 users."""
    aggregate = f"user-{i // 10}"
    envelope = Envelope(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"replay/{i}"), event_type="UserLastLoginUpdated",
        schema_version=2, aggregate_type="user", aggregate_id=aggregate,
        aggregate_version=i % 10 + 1, occurred_at=datetime(2025, 1, 1, tzinfo=UTC)
        + timedelta(seconds=i), producer="bench", correlation_id=str(i), causation_id=str(i),
        actor="bench", data={"logged_in_at": datetime(2025, 1, 1, tzinfo=UTC)},
    )  # fmt: skip
    return aggregate.encode(), codec.encode(envelope)


def tracking_event(codec: AvroCodec, i: int) -> tuple[bytes, bytes]:
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    event = TrackedEvent(
        message_id=f"r-{i}", event="page_view", user_id=f"u-{i % 5000}", anonymous_id=None,
        timestamp=at, received_at=at, properties={"path": f"/p/{i % 100}"}, context={},
        system_id=f"sys-{i % 3}", partner_id="p-bench",
    )  # fmt: skip
    envelope = recorded_envelope(event, producer="bench", schema_valid=True,
                                 structure_version=None)  # fmt: skip
    return event.system_id.encode(), codec.encode(envelope)


def bare_consume(bootstrap: str, topic: str, total: int) -> float:
    """events/s of a consumer that reads the topic and decodes nothing: the ceiling."""
    first, last = kafka_io.read(bootstrap, topic, total)
    return total / (last - first) if last > first else float("nan")


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.1)


async def one_run(args: argparse.Namespace, stack: LocalStack, topics: dict[str, str],
                  codec: AvroCodec, run_index: int) -> dict[str, Any]:  # fmt: skip
    from streamfold_partner_activity import PROJECTION as ACTIVITY

    bootstrap = stack.kafka_bootstrap
    home = Path(tempfile.mkdtemp(prefix="replay-"))
    dsn = f"chdb://{home / 'clickhouse'}"
    clickhouse, reader = ClickHouse.open(dsn), ClickHouse.open(dsn)
    await migrate(clickhouse)
    redis = open_redis(stack.redis_url)
    app_id = f"replay{run_index}{uuid.uuid4().hex[:6]}"
    producer = AsyncProducer(bootstrap, client_id="bench-replay")
    projections = [
        dataclasses.replace(event_log.PROJECTION, topics=(topics["events"],)),
        dataclasses.replace(ACTIVITY, topics=(topics["tracking"],)),
        dataclasses.replace(SINK, topics=(topics["tracking"],)),
    ]
    staging = ClickHouse.open(dsn, session=True)
    deps = Deps(app_id=app_id, bootstrap=bootstrap, clickhouse=clickhouse, redis=redis,
                codec=codec,
                dead_letters=DeadLetters.to_topic(producer, PROJECTIONS_DLQ, agent="bench"),
                batch_rows=args.batch_rows, batch_wait_s=0.5,
                batches={ACTIVITY.name: (50_000, 0.2), SINK.name: (50_000, 0.2)},
                producer=producer, staging=staging, core=compiled.load("auto"))  # fmt: skip
    ends = {t: await asyncio.to_thread(end_offsets, bootstrap, t) for t in topics.values()}

    async def caught_up(p: Projection, version: int) -> bool:
        applied = (await catalog.checkpoints(reader)).get((p.name, version), {})
        (topic,) = p.topics
        return all(applied.get((topic, n), -1) + 1 >= e for n, e in ends[topic].items())

    async def state(p: Projection, version: int) -> str | None:
        found = [v for v in await catalog.versions(reader)
                 if v.projection == p.name and v.version == version]  # fmt: skip
        return str(found[0].state) if found else None

    async def send(p: Projection, action: Action, version: int) -> None:
        request = Request(app_id=app_id, action=action, projection=p.name, version=version)
        await producer.produce(PROJECTIONS_CONTROL, request.encode(), key=p.name.encode())

    out: dict[str, Any] = {}
    for p in (p for p in projections if p.name in args.projections):
        # one at a time: each has the machine to itself
        runner = ProjectionRunner(
            [p], deps=deps, producer=AsyncProducer(bootstrap, client_id="bench-r")
        )
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(runner.run(stop))
        await until(lambda p=p: caught_up(p, 1), 3600, f"{p.name} v1")
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        await send(p, Action.REBUILD, 2)
        await until(lambda p=p: caught_up(p, 2), 3600, f"{p.name} v2")
        rebuild_s = time.perf_counter() - started
        started = time.perf_counter()
        await send(p, Action.PROMOTE, 2)
        await until(lambda p=p: _is(state(p, 2), "live"), 120, f"{p.name} v2 live")
        promote_s = time.perf_counter() - started
        stop.set()
        await task
        rows = await reader.query(f"SELECT count() AS n FROM {p.tables[0]}")
        out[p.name] = {
            "build_events_per_s": round(args.events / build_s),
            "rebuild_events_per_s": round(args.events / rebuild_s),
            "promote_ms": round(promote_s * 1000),
            "rows": int(rows[0]["n"]),
        }
        print(f"  run {run_index} {p.name}: {out[p.name]}", flush=True)

    # each topic's own ceiling: a tracking record is about three times a user event's size
    out["ceiling_events_per_s"] = {
        kind: round(await asyncio.to_thread(bare_consume, bootstrap, topic, args.events))
        for kind, topic in topics.items()
    }
    print(f"  run {run_index} bare consumer: {out['ceiling_events_per_s']}", flush=True)
    producer.close()
    for c in (staging, clickhouse, reader):
        c.close()
    await redis.aclose()
    return out


NAMES = ("event_log", "partner_activity", "tracking_events")


async def _is(value: Awaitable[str | None], wanted: str) -> bool:
    return await value == wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="per topic")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=20_000, help="runner batch size")
    parser.add_argument("--projections", nargs="+", choices=NAMES, default=list(NAMES))
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="replay-stack-"))
    stack = LocalStack.start(home)
    try:
        codec = AvroCodec(SchemaRegistry.load())
        ensure_topics(stack.kafka_bootstrap, project_topics(), partitions=6, replication=1)
        stamp = uuid.uuid4().hex[:6]
        topics = {"events": f"bench.replay.events-{stamp}",
                  "tracking": f"bench.replay.tracking-{stamp}"}  # fmt: skip
        started = time.perf_counter()
        fill(stack.kafka_bootstrap, topics["events"], args.events, lambda i: user_event(codec, i))
        fill(stack.kafka_bootstrap, topics["tracking"], args.events,
             lambda i: tracking_event(codec, i))  # fmt: skip
        print(f"filled 2 x {args.events:,} events in {time.perf_counter() - started:.0f} s")
        runs = [asyncio.run(one_run(args, stack, topics, codec, i)) for i in range(args.runs)]
    finally:
        stack.stop()
    medians: dict[str, Any] = {}
    for name in args.projections:
        medians[name] = {
            key: statistics.median(r[name][key] for r in runs)
            for key in runs[0][name]
            if key != "rows"
        }
    medians["ceiling_events_per_s"] = {
        kind: statistics.median(r["ceiling_events_per_s"][kind] for r in runs) for kind in topics
    }
    for name in args.projections:
        ceiling = medians["ceiling_events_per_s"]["events" if name == "event_log" else "tracking"]
        medians[name]["ratio_to_ceiling"] = round(medians[name]["build_events_per_s"] / ceiling, 3)
        print(f"{name:18} {medians[name]}")
    for kind, rate in medians["ceiling_events_per_s"].items():
        print(f"bare consumer, {kind} topic: {rate:,.0f} events/s")
    print(write_results("replay", args, runs, medians))


if __name__ == "__main__":
    main()
