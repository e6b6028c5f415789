"""The projection runner against a real broker, real Redis and a real chdb engine (issue 9).

- a rebuild while writes continue: at the same offsets the new version equals the old one
  and a fresh fold of the topic;
- a promotion under concurrent reads: no read fails or sees a partial table;
- a poison record goes to ``projections.dlq`` with the reason, in the live version and in
  the rebuild, and both finish;
- a rebuild SIGKILLed halfway resumes from its checkpoint, and the counts are exact;
- a promotion stopped between its EXCHANGE and the rest is finished on the next start;
- drop removes a retired version's tables.

Each scenario runs in a subprocess of its own (chdb allows one data path per process, and
the session's ``serve`` may own another) on a private topic and a private app id. The
projection under test is declared here, as a plugin would declare one; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Endpoints

pytestmark = pytest.mark.integration

TABLE = "proj_test"
COLUMNS = ("event_id", "message_id", "topic", "partition", "offset")
PARTITIONS = 3
BATCH_ROWS = 200
applied_while_building = 0  # records the building version's handler applied (resume check)


def _projection(topic: str, *, slow_rebuild: bool = False) -> Any:
    from pipeline.projections.projection import Context, Decoded, Projection, Store

    def ddl(tables: dict[str, str]) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {tables[TABLE]} (event_id UUID, message_id String, "
            "topic String, partition UInt32, offset UInt64) "
            "ENGINE = ReplacingMergeTree ORDER BY event_id"
        ]

    async def handle(batch: Sequence[Decoded], ctx: Context) -> list[tuple[Decoded, str]]:
        global applied_while_building
        rows = []
        for d in batch:
            message_id = d.envelope.correlation_id
            if message_id.startswith("poison"):
                raise ValueError(f"cannot apply {message_id}")
            rows.append([d.envelope.event_id, message_id, d.topic, d.partition, d.offset])
        await ctx.clickhouse.insert(ctx.tables[TABLE], rows, COLUMNS)
        if ctx.replaying:
            applied_while_building += len(batch)
            if slow_rebuild:
                await asyncio.sleep(0.05)
        return []

    return Projection(
        name="proj_test", topics=(topic,), store=Store.CLICKHOUSE, handle=handle,
        tables=(TABLE,), ddl=ddl,
    )  # fmt: skip


class Harness:
    """A runner with the test projection on a fresh chdb directory, and what a test asks."""

    def __init__(self, home: Path, bootstrap: str, redis_url: str, topic: str, app_id: str,
                 *, slow_rebuild: bool = False) -> None:  # fmt: skip
        self.home, self.bootstrap, self.redis_url = home, bootstrap, redis_url
        self.topic, self.app_id, self.slow_rebuild = topic, app_id, slow_rebuild

    async def __aenter__(self) -> Harness:
        from connectors.clickhouse import ClickHouse
        from connectors.kafka import AsyncProducer, TopicSpec, ensure_topics
        from connectors.redis import open_redis
        from pipeline.common.deadletter import DeadLetters
        from pipeline.common.topics import PROJECTIONS_DLQ, project_topics
        from pipeline.projections import migrate
        from pipeline.projections.runner import Deps
        from schemas.codec import AvroCodec
        from schemas.registry import SchemaRegistry

        ensure_topics(self.bootstrap, project_topics(), partitions=6, replication=1)
        ensure_topics(self.bootstrap, [TopicSpec(self.topic)], partitions=PARTITIONS,
                      replication=1)  # fmt: skip
        dsn = f"chdb://{self.home / 'clickhouse'}"
        self.clickhouse = ClickHouse.open(dsn)
        self.reader = ClickHouse.open(dsn)  # the readers' own connection, as the API's
        await migrate(self.clickhouse)
        self.codec = AvroCodec(SchemaRegistry.load())
        self.producer = AsyncProducer(self.bootstrap, client_id="test-projections")
        self.redis = open_redis(self.redis_url)
        runner_producer = AsyncProducer(self.bootstrap, client_id="test-projections-runner")
        deps = Deps(
            app_id=self.app_id, bootstrap=self.bootstrap, clickhouse=self.clickhouse,
            redis=self.redis, codec=self.codec,
            dead_letters=DeadLetters.to_topic(runner_producer, PROJECTIONS_DLQ,
                                              agent="projections"),
            batch_rows=BATCH_ROWS, batch_wait_s=0.1,
        )  # fmt: skip
        self.deps = deps
        self.start_runner(runner_producer)
        return self

    def start_runner(self, producer: Any = None) -> None:
        from connectors.kafka import AsyncProducer
        from pipeline.projections.runner import ProjectionRunner

        producer = producer or AsyncProducer(self.bootstrap, client_id="test-projections-runner")
        projection = _projection(self.topic, slow_rebuild=self.slow_rebuild)
        self.runner = ProjectionRunner([projection], deps=self.deps, producer=producer)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.runner.run(self.stop))

    async def stop_runner(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 60)

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_runner()
        self.producer.close()
        self.clickhouse.close()
        self.reader.close()
        await self.redis.aclose()

    async def produce(self, start: int, count: int, *, poison_at: int | None = None) -> None:
        from pipeline.domain.tracking import TrackedEvent, recorded_envelope

        now = datetime.now(UTC)
        sends = []
        for i in range(start, start + count):
            message_id = f"poison-{i}" if i == poison_at else f"m-{i}"
            event = TrackedEvent(
                message_id=message_id, event="page_view", user_id=f"u-{i % 11}",
                anonymous_id=None, timestamp=now, received_at=now, properties={"i": i},
                context={}, system_id=f"sys-{i % 5}", partner_id="p",
            )  # fmt: skip
            envelope = recorded_envelope(event, producer="test", schema_valid=True,
                                         structure_version=None)  # fmt: skip
            sends.append(self.producer.produce_nowait(
                self.topic, self.codec.encode(envelope), key=event.system_id.encode()
            ))  # fmt: skip
        await asyncio.gather(*sends)

    async def send(self, action: str, version: int, *, max_lag: int = 0) -> None:
        from pipeline.common.topics import PROJECTIONS_CONTROL
        from pipeline.projections.control import Action, Request

        request = Request(app_id=self.app_id, action=Action(action), projection="proj_test",
                          version=version, max_lag=max_lag)  # fmt: skip
        await self.producer.produce(PROJECTIONS_CONTROL, request.encode(), key=b"proj_test")

    async def states(self) -> dict[int, str]:
        from pipeline.projections import catalog

        return {v.version: str(v.state) for v in await catalog.versions(self.reader)
                if v.projection == "proj_test"}  # fmt: skip

    async def behind(self, version: int) -> int:
        from connectors.kafka import end_offsets
        from pipeline.projections import catalog

        ends = await asyncio.to_thread(end_offsets, self.bootstrap, self.topic)
        applied = (await catalog.checkpoints(self.reader)).get(("proj_test", version), {})
        return sum(catalog.lag({(self.topic, p): e for p, e in ends.items()}, applied).values())

    async def ids(self, table: str) -> list[str]:
        rows = await self.reader.query(f"SELECT event_id FROM {table} FINAL")
        return sorted(str(r["event_id"]) for r in rows)

    async def count(self, table: str, *, final: bool = True) -> int:
        rows = await self.reader.query(f"SELECT count() AS n FROM {table}{' FINAL' * final}")
        return int(rows[0]["n"])

    def fold_of_topic(self) -> list[str]:
        """A fresh fold of the whole topic, outside the runner: every event id but the
        poison records'."""
        from tests.support import read_topic

        ids = set()
        for msg in read_topic(self.bootstrap, self.topic):
            envelope = self.codec.decode(msg.value())
            if not envelope.correlation_id.startswith("poison"):
                ids.add(str(envelope.event_id))
        return sorted(ids)


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.2)


# -- the scenarios, in subprocesses ---------------------------------------------------------


async def _lifecycle(h: Harness) -> dict[str, Any]:
    out: dict[str, Any] = {}
    await h.produce(0, 3000, poison_at=1500)
    await until("v1 caught up", lambda: _zero(h.behind(1)))
    out["v1_states"] = await h.states()

    async def keep_writing() -> None:
        for start in range(3000, 5000, 100):
            await h.produce(start, 100)
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(keep_writing())
    await h.send("rebuild", 2)
    await until("v2 building", lambda: _has(h.states(), 2, "building"))
    await writer
    await until("v1 caught up after the writes", lambda: _zero(h.behind(1)))
    await until("v2 caught up", lambda: _zero(h.behind(2)))
    out["live_ids"] = await h.ids(TABLE)
    out["building_ids"] = await h.ids(f"{TABLE}__v2")
    out["fold_ids"] = h.fold_of_topic()

    reads: list[int] = []
    errors: list[str] = []
    reading = True

    async def read_all_the_time() -> None:
        while reading:
            try:
                reads.append(await h.count(TABLE))
            except Exception as exc:  # the assertion: there are none
                errors.append(repr(exc))

    reader = asyncio.create_task(read_all_the_time())
    await h.send("promote", 2)
    await until("v2 live", lambda: _has(h.states(), 2, "live"))
    await asyncio.sleep(0.5)  # reads after the exchange too
    reading = False
    await reader
    out["reads"], out["read_errors"] = reads, errors
    out["after_promote"] = await h.states()
    out["retired_count"] = await h.count(f"{TABLE}__v1")

    await h.produce(5000, 100)
    await until("v2 caught up live", lambda: _zero(h.behind(2)))
    out["live_count_after"] = await h.count(TABLE)

    await h.send("drop", 1)
    await until("v1 dropped", lambda: _has(h.states(), 1, "dropped"))
    tables = await h.reader.query("SELECT name FROM system.tables WHERE database = "
                                  "currentDatabase() AND name LIKE 'proj_test%'")  # fmt: skip
    out["tables_after_drop"] = sorted(r["name"] for r in tables)
    return out


async def _killed_halfway(h: Harness) -> None:
    """Builds version 2 slowly and SIGKILLs its own process halfway through."""
    await h.produce(0, 6000)
    await until("v1 caught up", lambda: _zero(h.behind(1)))
    await h.send("rebuild", 2)
    await until("v2 halfway", lambda: _between(h.behind(2), 1000, 5000), timeout_s=120)
    print(json.dumps({"behind_when_killed": await h.behind(2)}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def _resumed(h: Harness) -> dict[str, Any]:
    await until("v2 caught up", lambda: _zero(h.behind(2)), timeout_s=120)
    return {
        "applied_after_restart": applied_while_building,
        "count": await h.count(f"{TABLE}__v2"),
        "count_without_final": await h.count(f"{TABLE}__v2", final=False),
        "states": await h.states(),
    }


async def _promotion_interrupted(h: Harness) -> dict[str, Any]:
    """A runner that stopped after a promotion's EXCHANGE and before its RENAME and its
    catalog rows (the crash the table comments are for), then a runner started again."""
    from pipeline.projections import catalog
    from pipeline.projections.catalog import State

    await h.produce(0, 500)
    await until("v1 caught up", lambda: _zero(h.behind(1)))
    await h.send("rebuild", 2)
    await until("v2 building", lambda: _has(h.states(), 2, "building"))
    await until("v2 caught up", lambda: _zero(h.behind(2)))
    await h.stop_runner()
    # the first half of a promotion, as the runner does it, then the "crash"
    (building,) = [v for v in await catalog.versions(h.reader) if v.version == 2]
    await h.clickhouse.insert("projection_versions", [building.moved(State.PROMOTING).row()],
                              catalog.VERSION_COLUMNS)  # fmt: skip
    await h.clickhouse.command(f"EXCHANGE TABLES {TABLE} AND {TABLE}__v2")
    h.start_runner()
    await until("v2 live after the restart", lambda: _has(h.states(), 2, "live"))
    held = await catalog.table_versions(h.reader, [TABLE, f"{TABLE}__v1", f"{TABLE}__v2"])
    await h.produce(500, 50)
    await until("v2 caught up live", lambda: _zero(h.behind(2)))
    return {
        "states": await h.states(),
        "held": {name: version for name, (_, version) in held.items()},
        "live_count": await h.count(TABLE),
    }


async def _zero(n: Awaitable[int]) -> bool:
    return await n == 0


async def _between(n: Awaitable[int], low: int, high: int) -> bool:
    return low <= await n <= high


async def _has(states: Awaitable[dict[int, str]], version: int, state: str) -> bool:
    return (await states).get(version) == state


async def _main(mode: str, home: Path, bootstrap: str, redis_url: str, topic: str,
                app_id: str) -> dict[str, Any]:  # fmt: skip
    slow = mode in ("killed", "resumed")
    async with Harness(home, bootstrap, redis_url, topic, app_id, slow_rebuild=slow) as h:
        if mode == "lifecycle":
            return await _lifecycle(h)
        if mode == "interrupted":
            return await _promotion_interrupted(h)
        if mode == "killed":
            await _killed_halfway(h)
        return await _resumed(h)


# -- the tests --------------------------------------------------------------------------------


def _run(mode: str, home: Path, endpoints: Endpoints, topic: str, app_id: str) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.test_projection_runner", mode, str(home),
         endpoints.kafka_bootstrap, endpoints.redis_url, topic, app_id],
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )  # fmt: skip


def _last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def lifecycle(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    topic = f"test-proj-{uuid.uuid4().hex[:8]}"
    done = _run("lifecycle", tmp_path_factory.mktemp("runner"), endpoints, topic,
                f"t{uuid.uuid4().hex[:8]}")  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    result = _last_json(done.stdout)
    result["topic"], result["endpoints"], result["log"] = topic, endpoints, done.stderr
    return result


def test_a_rebuild_while_writes_continue_equals_the_live_version_and_a_fresh_fold(
    lifecycle: dict[str, Any],
) -> None:
    assert lifecycle["v1_states"] == {"1": "live"}
    fold = lifecycle["fold_ids"]
    assert len(fold) == 5000 - 1  # the poison record is not applied
    assert lifecycle["live_ids"] == fold
    assert lifecycle["building_ids"] == fold


def test_a_promotion_under_concurrent_reads_is_atomic(lifecycle: dict[str, Any]) -> None:
    assert lifecycle["read_errors"] == []
    assert len(lifecycle["reads"]) > 10, lifecycle["reads"]
    assert set(lifecycle["reads"]) == {4999}, sorted(set(lifecycle["reads"]))
    assert lifecycle["after_promote"] == {"1": "retired", "2": "live"}
    assert lifecycle["retired_count"] == 4999
    # the promoted version went on live on the table readers name
    assert lifecycle["live_count_after"] == 4999 + 100


def test_drop_removes_a_retired_version(lifecycle: dict[str, Any]) -> None:
    assert lifecycle["tables_after_drop"] == [TABLE]


def test_a_poison_record_is_dead_lettered_by_each_version_and_both_finish(
    lifecycle: dict[str, Any],
) -> None:
    from pipeline.common.topics import PROJECTIONS_DLQ
    from tests.support import read_topic

    reasons = []
    for msg in read_topic(lifecycle["endpoints"].kafka_bootstrap, PROJECTIONS_DLQ):
        headers = {k: v.decode() for k, v in msg.headers() or []}
        if headers.get("source.topic") == lifecycle["topic"]:
            reasons.append(headers["reason"])
    assert sorted(reasons) == [
        "proj_test v1: ValueError: cannot apply poison-1500",
        "proj_test v2: ValueError: cannot apply poison-1500",
    ]


def test_a_rebuild_killed_halfway_resumes_from_its_checkpoint(
    endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("runner-killed")
    topic, app_id = f"test-proj-{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    killed = _run("killed", home, endpoints, topic, app_id)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-6000:]
    behind = _last_json(killed.stdout)["behind_when_killed"]
    resumed = _run("resumed", home, endpoints, topic, app_id)
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    result = _last_json(resumed.stdout)
    assert result["states"] == {"1": "live", "2": "building"}
    assert result["count"] == 6000
    # it went on from its checkpoint: at most one batch per partition more than it lacked
    assert result["applied_after_restart"] <= behind + PARTITIONS * BATCH_ROWS, (result, behind)
    assert "from_checkpoint=True" in resumed.stderr


def test_a_promotion_interrupted_after_its_exchange_is_finished_on_the_next_start(
    endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> None:
    topic, app_id = f"test-proj-{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    done = _run("interrupted", tmp_path_factory.mktemp("runner-promote"), endpoints, topic,
                app_id)  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    result = _last_json(done.stdout)
    assert result["states"] == {"1": "retired", "2": "live"}
    # each table holds the version its name says: the exchange was not done twice
    assert result["held"] == {TABLE: 2, f"{TABLE}__v1": 1}
    assert result["live_count"] == 550


if __name__ == "__main__":
    from deploy.runtime import configure_logging

    configure_logging()
    mode, home, bootstrap, redis_url, topic, app_id = sys.argv[1:7]
    result = asyncio.run(_main(mode, Path(home), bootstrap, redis_url, topic, app_id))
    print(json.dumps(result, default=str))
