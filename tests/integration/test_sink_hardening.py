"""The tracking sink against a real broker and a real chdb engine (issue 7).

Reproduced before the fix, each scenario here failed:

- a batch of events from 150 months: ClickHouse refused the INSERT (code 252, more than
  100 partitions in one block) and the sink retried it forever;
- rows the store refuses (a value the column type cannot hold) and out-of-range times
  already in Kafka: retried forever, or stored as 1970/2106;
- an event whose text Avro cannot encode (a lone surrogate) in ``tracking.raw``: the
  validation consumer crashed (and with it the process);
- a consumer stuck on a batch: ``/readyz`` stayed 200;
- zombie writers: a member dropped from its group for exceeding ``max.poll.interval.ms``
  and its successor both inserted the same batch (stored twice), and the zombie's failed
  offset commit raised out of the consumer loop (in ``serve``: the process stopped).

Everything runs in one subprocess with a fresh chdb directory (chdb allows one data path
per process, and the session's ``serve`` may own another); Kafka and Redis are the
session's. Nothing is mocked: the only test hooks are a gate in front of one consumer's
inserts (the stall) and a handler that waits (the stuck consumer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Endpoints

pytestmark = pytest.mark.integration

ZOMBIE_CONFIG = {"session.timeout.ms": 6000, "max.poll.interval.ms": 7000}
STALL_THRESHOLD_S = 8.0


# -- the scenarios, in the subprocess -------------------------------------------------------


async def _main(home: Path, bootstrap: str, redis_url: str) -> dict[str, Any]:
    from clickhouse_connect.driver.exceptions import OperationalError
    from confluent_kafka import KafkaException

    from connectors.batch import BatchConsumer
    from connectors.clickhouse import ClickHouse, connect, refusal
    from connectors.kafka import AsyncProducer, ensure_topics, group_positions
    from connectors.redis import open_redis
    from pipeline.common import topics
    from pipeline.common.topics import project_topics
    from pipeline.domain.tracking import TrackedEvent, recorded_envelope
    from pipeline.edge.recording import Recorder, Structures
    from pipeline.edge.validation import Validation
    from pipeline.projections import migrate
    from pipeline.projections.partner_keys.lookups import SYSTEM
    from pipeline.projections.tracking.sink import RejectionSink, TrackingSink
    from schemas.codec import AvroCodec
    from schemas.registry import SchemaRegistry

    ensure_topics(bootstrap, project_topics(), partitions=6, replication=1)

    def new_topic() -> str:
        name = f"test-sink-{uuid.uuid4().hex[:8]}"
        ensure_topics(bootstrap, [topics.TopicSpec(name)], partitions=1, replication=1)
        return name

    dsn = f"chdb://{home / 'clickhouse'}"
    clickhouse = ClickHouse.open(dsn)
    await migrate(clickhouse)
    codec = AvroCodec(SchemaRegistry.load())
    producer = AsyncProducer(bootstrap, client_id="test-sink-hardening")
    redis = open_redis(redis_url)
    now = datetime.now(UTC)
    out: dict[str, Any] = {}

    def tracked(system: str, i: int, timestamp: datetime, **kw: Any) -> TrackedEvent:
        return TrackedEvent(
            message_id=f"m-{i}", event=kw.pop("event", "page_view"), user_id=f"u-{i % 7}",
            anonymous_id=None, timestamp=timestamp, received_at=now, properties={"i": i},
            context={}, system_id=system, partner_id="partner", **kw,
        )  # fmt: skip

    def recorded(t: TrackedEvent, structure_version: int | None = None) -> bytes:
        return codec.encode(
            recorded_envelope(
                t, producer="test", schema_valid=True, structure_version=structure_version
            )
        )

    async def produce(topic: str, key: str, values: Sequence[bytes]) -> None:
        await asyncio.gather(*[producer.produce_nowait(topic, v, key=key.encode()) for v in values])

    async def stored(system: str) -> dict[str, int]:
        rows = await clickhouse.query(
            "SELECT count() AS n, uniqExact(event_id) AS ids FROM tracking_events "
            "WHERE system_id = {s:String}",
            {"s": system},
        )
        return {"n": int(rows[0]["n"]), "ids": int(rows[0]["ids"])}

    def drained(group: str, topic: str) -> bool:
        try:
            positions = group_positions(bootstrap, group, [topic])
        except KafkaException:  # NOT_COORDINATOR on a fresh broker, for a second or two
            return False
        return all(committed >= end for committed, end in positions.values())

    async def run_until(
        consumers: Sequence[BatchConsumer], done: Callable[[], Awaitable[bool]], timeout_s: float
    ) -> list[str]:
        """Run ``consumers`` until ``done()`` or the timeout; their errors, as reprs."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not any(t.done() for t in tasks):
            if await done():
                break
            await asyncio.sleep(0.3)
        stop.set()
        # a handler stuck on a batch never sees ``stop``: cancel it, and say so
        _, stuck = await asyncio.wait(tasks, timeout=20)
        for task in stuck:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        return errors + ["stuck on a batch"] * len(stuck)

    def sink(facade: ClickHouse) -> TrackingSink:
        return TrackingSink(facade, producer, codec, dedup_window_s=86_400)

    def consumer(topic: str, group: str, handle: Any, **kw: Any) -> BatchConsumer:
        return BatchConsumer(bootstrap, group_id=group, topics=[topic], handle=handle, **kw)

    # 0. the staged path stores what the row path stores ----------------------------------
    out["staged"] = await _staged_equals_row_path(clickhouse, sink, tracked, recorded, now)

    # 1. 150 months in one batch: stored in chunks of at most 50 months ------------------
    topic, system, group = new_topic(), f"months-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    start = datetime(1990, 1, 15, tzinfo=UTC)
    events = [tracked(system, m, start + timedelta(days=31 * m)) for m in range(150)]
    await produce(topic, system, [recorded(e) for e in events])
    errors = await run_until(
        [consumer(topic, group, sink(clickhouse).run_batch, max_records=500, max_wait_s=2)],
        lambda: asyncio.to_thread(drained, group, topic),
        timeout_s=60,
    )
    months = await clickhouse.query(
        "SELECT uniqExact(toYYYYMM(timestamp)) AS m FROM tracking_events "
        "WHERE system_id = {s:String}",
        {"s": system},
    )
    out["months"] = {
        **await stored(system), "months": int(months[0]["m"]), "errors": errors,
        "drained": drained(group, topic), "system": system,
    }  # fmt: skip

    # 2. a store that allows fewer partitions per insert: 252 is a refusal, halving stores
    limited = ClickHouse(connect(dsn, {"max_partitions_per_insert_block": 10}))
    probe = [[datetime(2000, 1, 1, tzinfo=UTC) + timedelta(days=31 * m)] for m in range(20)]
    await limited.command("CREATE TABLE probe (d DateTime) ENGINE = MergeTree "
                          "PARTITION BY toYYYYMM(d) ORDER BY d")  # fmt: skip
    try:
        await limited.insert("probe", probe, ["d"])
        limit_refused = None
    except Exception as exc:
        limit_refused = refusal(exc)
    topic, system, group = new_topic(), f"halving-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    events = [tracked(system, m, start + timedelta(days=31 * m)) for m in range(60)]
    await produce(topic, system, [recorded(e) for e in events])
    errors = await run_until(
        [consumer(topic, group, sink(limited).run_batch, max_records=500, max_wait_s=2)],
        lambda: asyncio.to_thread(drained, group, topic),
        timeout_s=60,
    )
    out["halving"] = {
        **await stored(system), "limit_refused": limit_refused, "errors": errors,
        "drained": drained(group, topic), "system": system,
    }  # fmt: skip

    # 3. rows the store refuses and times it cannot hold: dead-lettered, the rest stored --
    topic, system, group = new_topic(), f"refused-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    good = [recorded(tracked(system, i, now - timedelta(minutes=i))) for i in range(40)]
    bad = [
        recorded(tracked(system, 100, now), structure_version=-1),  # UInt32 cannot hold it
        recorded(tracked(system, 101, datetime(9999, 12, 31, tzinfo=UTC))),  # old record
        recorded(tracked(system, 102, datetime(1, 1, 1, tzinfo=UTC))),
    ]
    values = good[:10] + bad[:1] + good[10:25] + bad[1:] + good[25:]
    await produce(topic, system, values)
    errors = await run_until(
        [consumer(topic, group, sink(clickhouse).run_batch, max_records=500, max_wait_s=2)],
        lambda: asyncio.to_thread(drained, group, topic),
        timeout_s=60,
    )
    out["refused"] = {
        **await stored(system), "errors": errors, "drained": drained(group, topic),
        "system": system,
    }  # fmt: skip

    # 4. validation: out-of-range times and an event Avro cannot encode, from tracking.raw
    topic, system, group = new_topic(), f"validation-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    await redis.set(SYSTEM.format(system_id=system),
                    json.dumps({"structures": {}, "unknown_events": "accept"}))  # fmt: skip
    raw = [
        tracked(system, 0, now - timedelta(seconds=1)),
        tracked(system, 1, datetime(1, 1, 1, tzinfo=UTC)),
        tracked(system, 2, now, event="bad \ud800 name"),
        tracked(system, 3, now + timedelta(days=2)),
        tracked(system, 4, now - timedelta(seconds=2)),
    ]
    validation = Validation(recorder=Recorder(Structures(redis), codec, "test"), producer=producer)
    await produce(topic, system, [json.dumps(t.to_json_dict()).encode() for t in raw])
    errors = await run_until(
        [consumer(topic, group, validation.run_batch, max_records=100, max_wait_s=1)],
        lambda: asyncio.to_thread(drained, group, topic),
        timeout_s=60,
    )
    out["validation"] = {"errors": errors, "drained": drained(group, topic), "system": system}

    # 4b. what validation dead-lettered reaches tracking_rejections, lone surrogate and all
    topic, group = new_topic(), f"g-{uuid.uuid4()}"
    letters = [
        json.dumps({"reasons": [f"reason {t.message_id}"], "system_id": system,
                    "partner_id": "partner", "event": t.to_json_dict()}).encode()
        for t in raw[1:3]
    ]  # fmt: skip
    await produce(topic, system, letters)
    errors = await run_until(
        [consumer(topic, group, RejectionSink(clickhouse).run_batch, max_wait_s=1)],
        lambda: asyncio.to_thread(drained, group, topic),
        timeout_s=60,
    )
    names = await clickhouse.query(
        "SELECT message_id, event FROM tracking_rejections FINAL WHERE system_id = {s:String} "
        "ORDER BY message_id",
        {"s": system},
    )
    out["rejections"] = {"errors": errors, "drained": drained(group, topic),
                         "stored": [[r["message_id"], r["event"]] for r in names]}  # fmt: skip

    # 5. /readyz names a consumer stuck on a batch -----------------------------------------
    out["readyz"] = await _readyz(bootstrap, redis, clickhouse, new_topic, produce, consumer)

    # 6. zombie writers: two consumers of one group insert the same batch ----------------
    topic, system, group = new_topic(), f"zombie-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    await produce(topic, system, [
        recorded(tracked(system, i, now - timedelta(seconds=i))) for i in range(200)
    ])  # fmt: skip
    zombie_entered, gate, successor_stored = asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Stalled(ClickHouse):
        """The zombie's store: its insert (row or staged) waits until the successor has
        stored the batch (longer than max.poll.interval.ms), as a slow or hung insert does."""

        async def insert(self, *args: Any, **kwargs: Any) -> None:
            zombie_entered.set()
            await asyncio.wait_for(gate.wait(), 90)
            await super().insert(*args, **kwargs)

        async def insert_select(self, *args: Any, **kwargs: Any) -> None:
            zombie_entered.set()
            await asyncio.wait_for(gate.wait(), 90)
            await super().insert_select(*args, **kwargs)

    class Successor(ClickHouse):
        async def insert(self, *args: Any, **kwargs: Any) -> None:
            await super().insert(*args, **kwargs)
            successor_stored.set()

        async def insert_select(self, *args: Any, **kwargs: Any) -> None:
            await super().insert_select(*args, **kwargs)
            successor_stored.set()

    settings = {"max_records": 200, "max_wait_s": 3, "config": ZOMBIE_CONFIG}
    zombie = consumer(topic, group, sink(Stalled(clickhouse.client)).run_batch, **settings)
    successor = consumer(topic, group, sink(Successor(clickhouse.client)).run_batch, **settings)
    stop = asyncio.Event()
    zombie_task = asyncio.create_task(zombie.run(stop))
    await asyncio.wait_for(zombie_entered.wait(), 60)
    started = time.monotonic()
    successor_task = asyncio.create_task(successor.run(stop))
    try:
        await asyncio.wait_for(successor_stored.wait(), 90)
        took_over_s = time.monotonic() - started
    finally:
        gate.set()
    released = time.monotonic()
    # the zombie inserts, its commit is refused, and it goes on polling (rejoins)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not zombie_task.done():
        if zombie.last_progress > released + 1:
            break
        await asyncio.sleep(0.3)
    zombie_alive = not zombie_task.done()
    stop.set()
    results = await asyncio.gather(zombie_task, successor_task, return_exceptions=True)
    out["zombie"] = {
        **await stored(system),
        "errors": [repr(r) for r in results if isinstance(r, BaseException)],
        "zombie_alive_after_its_commit": zombie_alive,
        "took_over_s": round(took_over_s, 1),
        "drained": drained(group, topic),
    }

    # 7. a zombie retrying a store that was down: its successor cut the batch otherwise
    # (other tokens), so only the membership check before each attempt keeps it out
    topic, system, group = new_topic(), f"retrying-{uuid.uuid4()}", f"g-{uuid.uuid4()}"
    await produce(topic, system, [
        recorded(tracked(system, i, now - timedelta(seconds=i))) for i in range(200)
    ])  # fmt: skip
    store_back = asyncio.Event()
    attempts = 0

    class Down(ClickHouse):
        """The zombie's store: down (a connection error) until the successor is done."""

        async def insert(self, *args: Any, **kwargs: Any) -> None:
            nonlocal attempts
            attempts += 1
            if not store_back.is_set():
                raise OperationalError("connection refused")
            await super().insert(*args, **kwargs)

        async def insert_select(self, *args: Any, **kwargs: Any) -> None:
            if not store_back.is_set():  # the staged path gives up: the row path retries
                raise OperationalError("connection refused")
            await super().insert_select(*args, **kwargs)

    zombie = consumer(topic, group, sink(Down(clickhouse.client)).run_batch,
                      max_records=200, max_wait_s=3, config=ZOMBIE_CONFIG)  # fmt: skip
    successor = consumer(topic, group, sink(clickhouse).run_batch,
                         max_records=120, max_wait_s=3, config=ZOMBIE_CONFIG)  # fmt: skip
    stop = asyncio.Event()
    zombie_task = asyncio.create_task(zombie.run(stop))
    deadline = time.monotonic() + 60
    while attempts == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    successor_task = asyncio.create_task(successor.run(stop))
    deadline = time.monotonic() + 90
    while not await asyncio.to_thread(drained, group, topic) and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    successor_done = await stored(system)
    store_back.set()
    back = time.monotonic()
    while time.monotonic() - back < 45 and not zombie_task.done():
        if zombie.last_progress > back + 1:
            break
        await asyncio.sleep(0.3)
    zombie_alive = not zombie_task.done()
    stop.set()
    results = await asyncio.gather(zombie_task, successor_task, return_exceptions=True)
    out["retrying_zombie"] = {
        **await stored(system), "successor_stored": successor_done,
        "errors": [repr(r) for r in results if isinstance(r, BaseException)],
        "zombie_alive": zombie_alive, "attempts": attempts,
    }  # fmt: skip

    producer.close()
    await redis.aclose()
    clickhouse.close()
    return out


async def _readyz(
    bootstrap: str, redis: Any, clickhouse: Any, new_topic: Any, produce: Any, consumer: Any
) -> dict[str, Any]:
    import httpx

    from api.app import create_api
    from api.deps import Services
    from pipeline.common.settings import Settings
    from pipeline.projections.partner_keys.lookups import KeyResolver

    topic, app_id = new_topic(), f"readyz-{uuid.uuid4().hex[:8]}"
    group = f"{app_id}-stuck"
    entered, release = asyncio.Event(), asyncio.Event()

    async def stuck(records: Sequence[Any]) -> None:
        entered.set()
        await release.wait()

    member = consumer(topic, group, stuck, max_records=10, max_wait_s=0.2)
    settings = Settings(
        env="test", jwt_secret="s" * 32, kafka_bootstrap=bootstrap, app_id=app_id,
        stall_threshold_s=STALL_THRESHOLD_S,
    )  # fmt: skip
    services = Services(
        settings=settings, clickhouse=clickhouse, redis=redis, bus=None,
        keys=KeyResolver(redis), ingest=None,
    )  # type: ignore[arg-type]  # fmt: skip
    app = create_api(services)
    app.state.batch_consumers = [member]
    stop = asyncio.Event()
    task = asyncio.create_task(member.run(stop))
    await produce(topic, "k", [b"x"] * 5)
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
    ) as client:

        async def readyz() -> dict[str, Any]:
            response = await client.get("/readyz")
            return {"status": response.status_code, "type": response.headers["content-type"],
                    "body": response.json()}  # fmt: skip

        await asyncio.wait_for(entered.wait(), 60)
        stuck_at = time.monotonic()
        await asyncio.sleep(1)
        out["stuck_briefly"] = await readyz()
        # a fresh readiness state: the other groups of this app id (no worker runs them)
        # are first seen from here on, and stay under the threshold until the end
        del app.state.readiness
        await asyncio.sleep(max(0.0, STALL_THRESHOLD_S + 1 - (time.monotonic() - stuck_at)))
        out["stuck"] = await readyz()
        released = time.monotonic()
        release.set()
        while member.last_progress < released and time.monotonic() - released < 30:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.2)  # READY_CACHE_S
        out["moving_again"] = await readyz()
    out["group"] = group
    stop.set()
    await task
    return out


async def _staged_equals_row_path(
    clickhouse: Any, sink: Any, tracked: Any, recorded: Any, now: datetime
) -> dict[str, Any]:
    """One batch, stored by the staged path under one system and by the row path under
    another: the rows, the columns both paths make apart from the ids, the positions and
    the system. The batch holds what the mapping could get wrong: a user id or an empty
    one beside an anonymous id, nulls, pre-1970 client times with sub-millisecond
    digits, a structure version, an SDK retry within the batch (same message id, later
    received time: the first one is stored) and an event stored by an earlier batch."""
    from connectors.batch import Record
    from pipeline.domain.tracking import TrackedEvent

    def events(system: str) -> list[TrackedEvent]:
        made = []
        for i in range(40):
            event = tracked(system, i, now - timedelta(minutes=i, microseconds=i * 1501))
            if i % 3 == 0:
                event = dataclasses.replace(event, user_id="" if i % 2 else None,
                                            anonymous_id=f"anon-{i}")  # fmt: skip
            if i % 4 == 0:
                event = dataclasses.replace(
                    event, original_timestamp=datetime(1969, 12, 31, 23, 59, 59, 998_499, UTC)
                )
            made.append(event)
        retry = dataclasses.replace(made[5], received_at=now + timedelta(seconds=3))
        return [*made, retry]

    def batch(system: str, first_offset: int) -> list[Record]:
        return [
            Record("tracking.events", 0, first_offset + i, system.encode(),
                   recorded(e, structure_version=3 if i % 5 else None), ())
            for i, e in enumerate(events(system))
        ]  # fmt: skip

    async def rows(system: str) -> list[tuple[Any, ...]]:
        found = await clickhouse.query(
            "SELECT * EXCEPT (event_id, system_id, topic, partition, offset) FROM tracking_events "
            "WHERE system_id = {s:String} ORDER BY message_id, received_at",
            {"s": system},
        )
        return [tuple(r.values()) for r in found]

    staged_system, row_system = f"staged-{uuid.uuid4()}", f"rows-{uuid.uuid4()}"
    staged_sink, row_sink = sink(clickhouse), sink(clickhouse)
    # an earlier batch stored event 7 already: neither path stores it again
    earlier_staged, earlier_rows = batch(staged_system, 0)[7:8], batch(row_system, 0)[7:8]
    took_staged = [await staged_sink._staged(earlier_staged)]
    await row_sink._row_by_row(earlier_rows)
    took_staged.append(await staged_sink._staged(batch(staged_system, 100)))
    await row_sink._row_by_row(batch(row_system, 100))
    staged, by_row = await rows(staged_system), await rows(row_system)
    return {
        "took_staged": took_staged,
        "same": staged == by_row,
        "n": len(staged),
        "n_row_path": len(by_row),
        "first_difference": next(
            ([repr(a), repr(b)] for a, b in zip(staged, by_row, strict=False) if a != b), None
        ),
    }


# -- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outcome(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("sink-hardening")
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_sink_hardening", str(home),
         endpoints.kafka_bootstrap, endpoints.redis_url],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = done.stderr
    result["endpoints"] = endpoints
    return result


def _dead_letters(endpoints: Endpoints, system: str) -> list[tuple[str, dict[str, Any]]]:
    """(reason header, JSON body) of every tracking.dlq record keyed by ``system``."""
    from pipeline.common import topics
    from tests.support import read_topic

    found = []
    for msg in read_topic(endpoints.kafka_bootstrap, topics.TRACKING_DLQ):
        if msg.key() == system.encode():
            headers = {k: v.decode() for k, v in msg.headers() or []}
            found.append((headers["reason"], json.loads(msg.value())))
    return found


def test_the_staged_path_stores_what_the_row_path_stores(outcome: dict[str, Any]) -> None:
    staged = outcome["staged"]
    assert staged["took_staged"] == [True, True], staged
    # 40 distinct events (a retry and an already stored one among the 41 + 1 records)
    assert staged["n"] == staged["n_row_path"] == 40, staged
    assert staged["same"], staged["first_difference"]


def test_a_batch_over_150_months_is_stored_in_chunks(outcome: dict[str, Any]) -> None:
    months = outcome["months"]
    assert months["errors"] == [] and months["drained"], months
    assert months["n"] == months["ids"] == 150 and months["months"] == 150


def test_too_many_partitions_is_a_refusal_and_halving_stores_every_row(
    outcome: dict[str, Any],
) -> None:
    halving = outcome["halving"]
    assert halving["limit_refused"] == "TOO_MANY_PARTS (code 252)"  # the engine's own refusal
    assert halving["errors"] == [] and halving["drained"], halving
    assert halving["n"] == halving["ids"] == 60
    assert "insert refused, halving to find the rows" in outcome["log"]
    assert _dead_letters(outcome["endpoints"], halving["system"]) == []


def test_refused_rows_are_dead_lettered_with_the_reason_and_the_rest_stored(
    outcome: dict[str, Any],
) -> None:
    refused = outcome["refused"]
    assert refused["errors"] == [] and refused["drained"], refused
    assert refused["n"] == refused["ids"] == 40
    letters = _dead_letters(outcome["endpoints"], refused["system"])
    by_message = {body["event"]["message_id"]: (reason, body) for reason, body in letters}
    assert sorted(by_message) == ["m-100", "m-101", "m-102"]
    reason, body = by_message["m-100"]
    assert reason.startswith("refused by ClickHouse: DataError: ")
    assert "structure_version" in reason
    assert body["reasons"] == [reason] and body["system_id"] == refused["system"]
    assert by_message["m-101"][0].startswith(
        "timestamp 9999-12-31T00:00:00.000Z is outside the accepted range"
    )
    assert by_message["m-102"][0].startswith("timestamp 0001-01-01T00:00:00.000Z is outside")


def test_validation_dead_letters_what_the_store_cannot_hold_and_goes_on(
    outcome: dict[str, Any],
) -> None:
    validation = outcome["validation"]
    assert validation["errors"] == [] and validation["drained"], validation
    letters = _dead_letters(outcome["endpoints"], validation["system"])
    reasons = {body["event"]["message_id"]: body["reasons"] for _, body in letters}
    assert sorted(reasons) == ["m-1", "m-2", "m-3"]
    assert "outside the accepted range 1970-01-01T00:00:00.000Z" in reasons["m-1"][0]
    assert reasons["m-2"][0].startswith("not encodable as Avro: ")
    assert "(received time + 1 day)" in reasons["m-3"][0]


def test_a_rejection_with_a_lone_surrogate_is_stored(outcome: dict[str, Any]) -> None:
    rejections = outcome["rejections"]
    assert rejections["errors"] == [] and rejections["drained"], rejections
    assert rejections["stored"] == [["m-1", "page_view"], ["m-2", "bad ? name"]]


def test_readyz_names_a_stuck_consumer_group(outcome: dict[str, Any]) -> None:
    readyz = outcome["readyz"]
    assert readyz["stuck_briefly"]["status"] == 200, readyz["stuck_briefly"]
    stuck = readyz["stuck"]
    assert stuck["status"] == 503, stuck
    assert stuck["type"].startswith("application/problem+json")
    body = stuck["body"]
    assert body["type"] == "/problems/stalled"
    assert [s["group"] for s in body["stalled"]] == [readyz["group"]]
    assert body["stalled"][0]["waiting"] == 5
    assert body["stalled"][0]["stalled_s"] >= STALL_THRESHOLD_S
    assert body["detail"].startswith(f"consumer group {readyz['group']} has 5 records waiting")
    assert "Error" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    assert readyz["moving_again"]["status"] == 200, readyz["moving_again"]


def test_two_writers_of_one_batch_store_it_once(outcome: dict[str, Any]) -> None:
    zombie = outcome["zombie"]
    # the successor took the partition only once the zombie was dropped from the group
    assert zombie["took_over_s"] >= ZOMBIE_CONFIG["max.poll.interval.ms"] / 1000 - 1, zombie
    assert zombie["n"] == zombie["ids"] == 200, zombie
    # the zombie's refused commit was logged and it went on polling
    assert zombie["errors"] == [] and zombie["zombie_alive_after_its_commit"], zombie
    assert "commit refused: the partitions moved to another member" in outcome["log"]
    assert zombie["drained"]


def test_a_zombie_retrying_a_dead_store_gives_its_batch_up(outcome: dict[str, Any]) -> None:
    retrying = outcome["retrying_zombie"]
    assert retrying["successor_stored"] == {"n": 200, "ids": 200}, retrying
    assert retrying["errors"] == [] and retrying["zombie_alive"], retrying
    assert retrying["n"] == retrying["ids"] == 200, retrying
    assert "batch given up: this member left its group" in outcome["log"]


if __name__ == "__main__":
    from deploy.runtime import configure_logging

    configure_logging()
    result = asyncio.run(_main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
    print(json.dumps(result, default=str))
