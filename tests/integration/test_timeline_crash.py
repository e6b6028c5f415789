"""The timeline projection SIGKILLed in the middle of fan-out, restarted: every feed
equals the reference (pull everything from the topics) (issue 10, section 5).

A subprocess runs the projection runner with the timeline projection over private copies
of ``chirps.events`` and ``follows.events`` (same handler, other topic names), on a
Redis database of its own; its handler kills the process with SIGKILL halfway through a
batch of chirps (an author with 1,500 followers makes each a fan-out of 1,500 writes),
after part of it reached Redis and before the checkpoint. A
second subprocess starts the runner again, lets it catch up from its checkpoint, and
compares the feed of every user with the reference model of
``tests/integration/test_timeline_model.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Endpoints

pytestmark = pytest.mark.integration

FOLLOWERS = 1500
CHIRPS = 120
_DB = 8


def _workload() -> list[Any]:
    """Envelopes from the real write side: follows of a popular and a small author, their
    chirps, some deletes and unfollows, in issue order."""
    from pipeline.domain import chirps, follows
    from pipeline.domain.handling import Snapshot, handle
    from pipeline.write.aggregates import CHIRPS as CHIRP_AGGREGATE
    from pipeline.write.aggregates import FOLLOWS

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    clock = iter(range(10**9))
    out: list[Any] = []
    snapshots: dict[str, Snapshot] = {}

    def run(spec: Any, kind: Any, aggregate_id: str, actor: str, **fields: Any) -> None:
        command = kind(command_id=str(uuid.uuid4()), aggregate_id=aggregate_id, actor=actor,
                       issued_at=t0 + timedelta(milliseconds=next(clock)), **fields)  # fmt: skip
        outcome = handle(spec, snapshots.get(aggregate_id, Snapshot(state=None)), command,
                         producer="crash-test", window=4)  # fmt: skip
        assert outcome.result.status == "accepted", outcome.result
        snapshots[aggregate_id] = outcome.snapshot
        out.extend(outcome.envelopes)

    star, small = str(uuid.uuid4()), str(uuid.uuid4())
    fans = [str(uuid.uuid4()) for _ in range(FOLLOWERS)]
    for i, fan in enumerate(fans):
        run(FOLLOWS.spec, follows.FollowUser, follows.follow_id(fan, star), fan,
            follower_id=fan, followee_id=star)  # fmt: skip
        if i % 5 == 0:
            run(FOLLOWS.spec, follows.FollowUser, follows.follow_id(fan, small), fan,
                follower_id=fan, followee_id=small)  # fmt: skip
    posted = []
    for n in range(CHIRPS):
        author = star if n % 3 else small
        chirp_id = str(uuid.uuid4())
        run(CHIRP_AGGREGATE.spec, chirps.PostChirp, chirp_id, author, author_id=author,
            text=f"chirp {n}")  # fmt: skip
        posted.append((chirp_id, author))
        if n % 10 == 9:  # a delete and an unfollow now and then, mid-stream
            gone, by = posted[n - 5]
            run(CHIRP_AGGREGATE.spec, chirps.DeleteChirp, gone, by)
            fan = fans[n]
            run(FOLLOWS.spec, follows.UnfollowUser, follows.follow_id(fan, star), fan,
                follower_id=fan, followee_id=star)  # fmt: skip
    return out


async def _main(mode: str, home: Path, bootstrap: str, redis_url: str, tag: str) -> Any:
    from connectors.clickhouse import ClickHouse
    from connectors.kafka import AsyncProducer, TopicSpec, end_offsets, ensure_topics
    from connectors.redis import open_redis
    from pipeline.common.deadletter import DeadLetters
    from pipeline.common.topics import PROJECTIONS_DLQ, project_topics
    from pipeline.domain.timeline_policy import TimelinePolicy
    from pipeline.projections import catalog, migrate, timelines
    from pipeline.projections.runner import Deps, ProjectionRunner
    from schemas.codec import AvroCodec
    from schemas.registry import SchemaRegistry
    from tests.integration.test_timeline_model import reference_feed

    topic_of = {"chirp": f"test-chirps-{tag}", "follow": f"test-follows-{tag}"}
    ensure_topics(bootstrap, project_topics(), partitions=6, replication=1)
    ensure_topics(bootstrap, [TopicSpec(t) for t in topic_of.values()], partitions=3,
                  replication=1)  # fmt: skip
    clickhouse = ClickHouse.open(f"chdb://{home / 'clickhouse'}")
    await migrate(clickhouse)
    codec = AvroCodec(SchemaRegistry.load())
    redis = open_redis(redis_url)
    producer = AsyncProducer(bootstrap, client_id="test-timeline-crash")
    if mode == "killed":
        await redis.flushdb()
        sends = [
            producer.produce_nowait(
                topic_of[e.aggregate_type], codec.encode(e), key=e.aggregate_id.encode()
            )
            for e in _workload()
        ]
        await asyncio.gather(*sends)
    deps = Deps(
        app_id=f"crash{tag}", bootstrap=bootstrap, clickhouse=clickhouse, redis=redis,
        codec=codec, batch_rows=50, batch_wait_s=0.05,
        dead_letters=DeadLetters.to_topic(producer, PROJECTIONS_DLQ, agent="projections"),
        timelines=TimelinePolicy(celebrity_followers=5000),
    )  # fmt: skip
    bind = timelines.bind if mode == "resumed" else _killing(timelines.bind)
    projection = dataclasses.replace(
        timelines.PROJECTION, topics=tuple(topic_of.values()), bind=bind
    )
    runner = ProjectionRunner([projection], deps=deps, producer=producer)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    ends: dict[tuple[str, int], int] = {}
    for topic in topic_of.values():
        for partition, end in (await asyncio.to_thread(end_offsets, bootstrap, topic)).items():
            ends[(topic, partition)] = end
    key = catalog.CHECKPOINT_KEY.format(projection="timelines", version=1)
    behind: dict[Any, int] = {}
    for _ in range(2400):  # the killed mode never leaves this loop: its handler kills it
        if task.done():
            raise AssertionError(f"{mode}: the runner stopped: {task.exception()!r}")
        behind = catalog.lag(ends, catalog.redis_checkpoint(await redis.hgetall(key)))
        if mode == "resumed" and sum(behind.values()) == 0:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"{mode}: not caught up in 120 s; behind: {behind}")
    stop.set()
    await asyncio.wait_for(task, 60)

    from tests.support import read_topic

    delivered = [codec.decode(m.value()) for t in topic_of.values()
                 for m in read_topic(bootstrap, t)]  # fmt: skip
    users = sorted({e.data.get("follower_id") for e in delivered} - {None})
    scripts = timelines.Scripts.on(redis)
    wrong = []
    for user in users:
        items, _ = await timelines.feed(scripts, user, limit=CHIRPS + 10, cursor=None)
        if [i.chirp_id for i in items] != reference_feed(delivered, user):
            wrong.append(user)
    producer.close()
    clickhouse.close()
    await redis.aclose()
    return {"users": len(users), "wrong": len(wrong), "fanned": await _homes(redis_url)}


def _killing(bind: Any) -> Any:
    """``bind`` whose handler SIGKILLs its process in the middle of the third batch that
    posts chirps: after the first chunk of scripts reached Redis, before the rest and
    before the runner's checkpoint."""

    def bound(deps: Any) -> Any:
        handler = bind(deps)
        posting = 0

        async def handle(batch: Any, ctx: Any) -> Any:
            nonlocal posting
            if any(d.envelope.event_type == "ChirpPosted" for d in batch):
                posting += 1
                if posting == 3 and len(batch) > 1:
                    await handler(batch[: len(batch) // 2], ctx)
                    print(json.dumps({"killed_in_batch_of": len(batch)}), flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
            return await handler(batch, ctx)

        return handle

    return bound


async def _homes(redis_url: str) -> int:
    from connectors.redis import open_redis

    redis = open_redis(redis_url)
    total = 0
    async for key in redis.scan_iter(match="tl:home:*", count=1000):
        total += await redis.zcard(key)
    await redis.aclose()
    return total


def _tails(done: Any) -> str:
    # the runner logs to stdout (structlog's default), the traceback is on stderr
    return f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"


def _run(mode: str, home: Path, endpoints: Endpoints, tag: str) -> Any:
    redis_url = endpoints.redis_url.rsplit("/", 1)[0] + f"/{_DB}"
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.test_timeline_crash", mode, str(home),
         endpoints.kafka_bootstrap, redis_url, tag],
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )  # fmt: skip


def test_killed_mid_fan_out_then_restarted_feeds_equal_the_reference(
    endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home, tag = tmp_path_factory.mktemp("timeline-crash"), uuid.uuid4().hex[:8]
    killed = _run("killed", home, endpoints, tag)
    assert killed.returncode == -signal.SIGKILL, _tails(killed)
    assert "killed_in_batch_of" in killed.stdout, killed.stdout[-2000:]
    resumed = _run("resumed", home, endpoints, tag)
    assert resumed.returncode == 0, _tails(resumed)
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["users"] == FOLLOWERS and result["wrong"] == 0, result
    assert result["fanned"] > FOLLOWERS * 10  # the fan-out happened at scale


if __name__ == "__main__":
    mode_, home_, bootstrap_, redis_url_, tag_ = sys.argv[1:6]
    print(json.dumps(asyncio.run(_main(mode_, Path(home_), bootstrap_, redis_url_, tag_))))
