"""One runner for every read model: projections as named, versioned folds over topics.

A :class:`Projection` declares what a read model is: its name, its source topics, its
store (ClickHouse tables or Redis keys), the DDL of its tables and a handler over a batch
of decoded records. The runner (:class:`ProjectionRunner`, in the sinks role) runs one
:class:`Instance` per live or building version, each on a confluent-kafka batch consumer
of its own (group ``<app id>-projection-<name>-v<N>``).

The contract a handler keeps is in ``pipeline/projections/projection.py``.

Commit order for one batch (what makes a crash anywhere neither lose nor double an event):

1. decode; records that do not decode go to ``projections.dlq`` (acked);
2. the handler writes its rows (ClickHouse) or queues its writes (Redis);
3. the records it refused go to ``projections.dlq`` (acked);
4. the checkpoint: ClickHouse, a row per partition in ``projection_checkpoints`` after the
   rows; Redis, the hash in the same MULTI/EXEC as the writes;
5. the consumer commits the group's offsets (a hint only: a version resumes from its
   checkpoint, ``connectors.batch.StartAt``).

Failures follow ``pipeline.common.failures``: a store outage retries the batch (steps 2-4) with
capped backoff, a record at fault is halved out and dead-lettered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType

import orjson
import structlog
from pydantic import ValidationError
from redis.asyncio import Redis

from connectors.batch import BatchConsumer, PartitionsLost, Record, highest_offsets
from connectors.clickhouse import ClickHouse
from connectors.kafka import AsyncProducer, end_offsets, offsets_at
from pipeline.common import failures, topics
from pipeline.common.deadletter import DeadLetters
from pipeline.domain.timeline_policy import TimelinePolicy
from pipeline.projections import catalog
from pipeline.projections.catalog import Offsets, State, Version
from pipeline.projections.control import Action, Request
from pipeline.projections.projection import (
    Context,
    Decoded,
    Failed,
    Handler,
    Projection,
    Store,
)  # fmt: skip
from schemas.codec import AvroCodec
from schemas.envelope import Envelope

log = structlog.get_logger(__name__)


def group_of(app_id: str, projection: Projection, version: int) -> str:
    """The consumer group of one version of a projection (version 1 of one that had a
    group before the runner keeps it: ``Projection.legacy_group``)."""
    if version == 1 and projection.legacy_group:
        return f"{app_id}-{projection.legacy_group}"
    return f"{app_id}-projection-{projection.name}-v{version}"


def control_group(app_id: str) -> str:
    """The runner's reader of ``projections.control``."""
    return f"{app_id}-projections-control"


def consumer_groups(
    app_id: str, projections: Iterable[Projection], versions: Iterable[Version]
) -> dict[str, list[str]]:
    """Consumer group -> topics of every running version (live or building) of each
    installed projection; one the catalog does not know yet counts as version 1, the one
    the runner starts it at."""
    running: dict[str, list[int]] = {}
    for v in versions:
        if v.state in (State.LIVE, State.BUILDING, State.PROMOTING):
            running.setdefault(v.projection, []).append(v.version)
    return {
        group_of(app_id, p, number): list(p.topics)
        for p in projections
        for number in running.get(p.name, [1])
    }


@dataclass
class Stats:
    applied: int = 0
    dead_lettered: int = 0
    events_per_s: float = 0.0
    last_error: str = ""
    _window_start: float = field(default_factory=time.monotonic)
    _window_count: int = 0

    def count(self, n: int) -> None:
        self.applied += n
        self._window_count += n
        now = time.monotonic()
        elapsed = now - self._window_start
        if elapsed >= 1.0:
            self.events_per_s = self._window_count / elapsed
            self._window_start, self._window_count = now, 0

    def idle(self) -> None:
        if time.monotonic() - self._window_start >= 2.0:
            self.events_per_s = 0.0
            self._window_start, self._window_count = time.monotonic(), 0


@dataclass(frozen=True, slots=True)
class Deps:
    """What every instance of the runner shares."""

    app_id: str
    bootstrap: str
    clickhouse: ClickHouse
    redis: Redis
    codec: AvroCodec
    """Decodes envelopes for every projection without a ``decode`` of its own."""
    dead_letters: DeadLetters
    batch_rows: int
    batch_wait_s: float
    batches: Mapping[str, tuple[int, float]] = dataclasses.field(default_factory=dict)
    """Projection name -> (records, seconds) per batch, for one that needs its own."""
    # what the tracking sinks bind to (pipeline/projections/tracking/sink.py: SINK, REJECTIONS)
    producer: AsyncProducer | None = None
    staging: ClickHouse | None = None
    """A ClickHouse client with a session, for the tracking sink's temporary table."""
    core: ModuleType | None = None
    """The compiled core (``pipeline.common.compiled.load``), which builds the staged
    container files of the tracking sink and plugins; None: the Python reference."""
    dedup_window_s: int = 86_400
    timelines: TimelinePolicy = dataclasses.field(default_factory=TimelinePolicy)
    """The timeline projection's fan-out numbers (``pipeline/projections/timelines.py``)."""


class Instance:
    """One version of one projection, on a batch consumer of its own."""

    def __init__(
        self, projection: Projection, version: Version, *, live: bool, applied: Offsets, deps: Deps
    ) -> None:
        self.projection = projection
        self.version = version
        self.live = live
        self.applied: Offsets = dict(applied)
        """The checkpoint: last offset applied per partition (kept in step with the store)."""
        self.deps = deps
        self.stats = Stats()
        self.decode = projection.decode or deps.codec.decode
        handle = projection.bind(deps) if projection.bind is not None else projection.handle
        if handle is None:
            raise ValueError(f"projection {projection.name} has neither handle nor bind")
        self.handle: Handler = handle
        self.context = Context(
            projection=projection.name,
            version=version.version,
            tables=projection.tables_of(version.version, live=live),
            replaying=not live,
            clickhouse=deps.clickhouse,
            redis=deps.redis,
            key_prefix=catalog.key_prefix(version, live=live),
        )

    def _start_at(self, topic: str, partition: int) -> int | None:
        last = self.applied.get((topic, partition))
        return None if last is None else last + 1

    async def run(self, stop: asyncio.Event) -> None:
        """Consume from the checkpoint until ``stop`` (the consumer is made here: an
        instance that never runs never opens a Kafka client)."""
        deps, p = self.deps, self.projection
        rows, wait_s = deps.batches.get(p.name, (deps.batch_rows, deps.batch_wait_s))
        consumer = BatchConsumer(
            deps.bootstrap,
            group_id=group_of(deps.app_id, p, self.version.version),
            topics=p.topics,
            handle=self.run_batch,
            max_records=rows,
            max_wait_s=wait_s,
            start_at=self._start_at,
        )
        await consumer.run(stop)

    async def run_batch(self, records: Sequence[Record]) -> None:
        decoded: list[Decoded] = []
        for record in records:
            try:
                value = self.decode(record.value or b"")
            except Exception as exc:
                await self._dead_letter(record, f"undecodable: {type(exc).__name__}: {exc}")
                continue
            decoded.append(Decoded(value, record.topic, record.partition, record.offset, record))
        await self._apply(decoded, highest_offsets(records))
        self.stats.count(len(records))

    async def _apply(self, batch: Sequence[Decoded], offsets: Offsets) -> None:
        """Apply ``batch`` and checkpoint ``offsets``; halve around a record at fault."""
        try:
            await failures.until_stored(
                f"{self.projection.name} v{self.version.version}",
                lambda: self._write(batch, offsets),
                retry_on=self._outage,
            )
            return
        except PartitionsLost:
            raise
        except Exception as exc:
            if len(batch) <= 1:
                if batch:
                    await self._dead_letter(batch[0].record, f"{type(exc).__name__}: {exc}")
                await failures.until_stored(
                    "checkpoint", lambda: self._write([], offsets), retry_on=self._outage
                )
                return
        half = len(batch) // 2
        first, second = batch[:half], batch[half:]
        await self._apply(first, highest_offsets([d.record for d in first]))
        await self._apply(second, offsets)

    def _outage(self, exc: BaseException) -> bool:
        outage = failures.is_outage(exc)
        if outage:
            self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return outage

    async def _write(self, batch: Sequence[Decoded], offsets: Offsets) -> None:
        """Steps 2-4 of the module docstring, as one retryable unit."""
        p = self.projection
        if p.store is Store.REDIS:
            async with self.deps.redis.pipeline(transaction=True) as pipe:
                ctx = dataclasses.replace(self.context, pipe=pipe)
                refused = await self.handle(batch, ctx) if batch else ()
                await self._dead_letter_all(refused)
                key = catalog.CHECKPOINT_KEY.format(projection=p.name, version=self.version.version)
                pipe.hset(key, mapping=catalog.redis_fields(offsets))
                await pipe.execute()
        else:
            refused = await self.handle(batch, self.context) if batch else ()
            await self._dead_letter_all(refused)
            await self.deps.clickhouse.insert(
                "projection_checkpoints",
                catalog.checkpoint_rows(p.name, self.version.version, offsets),
                catalog.CHECKPOINT_COLUMNS,
            )
        self.applied.update(offsets)
        self.stats.last_error = ""
        if not self.context.replaying and p.decode is None:  # only the default decode
            self._log_projected(batch, refused)  # gives envelopes (not the tracking sink's)

    def _log_projected(self, batch: Sequence[Decoded], refused: Failed) -> None:
        """One line per aggregate event applied (seed 000: every change traceable), ids
        and types only, never the data. Not for a rebuild (it re-reads history) nor for
        records that are no envelope (tracking events: their counters say enough)."""
        skipped = {id(d) for d, _ in refused}
        for d in batch:
            env = d.value
            if isinstance(env, Envelope) and id(d) not in skipped:
                log.info("event projected", projection=self.projection.name,
                         event_id=env.event_id, event_type=env.event_type,
                         aggregate_type=env.aggregate_type, aggregate_id=env.aggregate_id,
                         aggregate_version=env.aggregate_version,
                         correlation_id=env.correlation_id)  # fmt: skip

    async def _dead_letter_all(self, refused: Failed) -> None:
        for decoded, reason in refused:
            await self._dead_letter(decoded.record, reason)

    async def _dead_letter(self, record: Record, reason: str) -> None:
        self.stats.dead_lettered += 1
        await self.deps.dead_letters.send(
            record, f"{self.projection.name} v{self.version.version}: {reason}"
        )


# ----------------------------------------------------------------------------- control
@dataclass
class _Running:
    instance: Instance
    stop: asyncio.Event
    task: asyncio.Task[None]


class ProjectionRunner:
    """Every projection's live and building versions in this process, and the control
    requests that rebuild, promote and drop them.

    Start: catalog tables created; a projection never seen gets version 1, live, on the
    tables readers name; a promotion interrupted by a crash is finished; then one instance
    per live and building version, each from its checkpoint.
    """

    def __init__(
        self,
        projections: Sequence[Projection],
        *,
        deps: Deps,
        producer: AsyncProducer,
    ) -> None:
        """``producer``: the dead letters' (closed when the runner stops)."""
        self.projections = {p.name: p for p in projections}
        if len(self.projections) != len(projections):
            raise ValueError("two projections share a name")
        self.deps = deps
        self.producer = producer
        self.running: dict[tuple[str, int], _Running] = {}
        self._failure: BaseException | None = None
        self._stop = asyncio.Event()

    @property
    def ch(self) -> ClickHouse:
        return self.deps.clickhouse

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; an instance that fails stops the runner and re-raises."""
        self._stop = stop
        for ddl in catalog.DDL:
            await self.ch.command(ddl)
        await self._start_all()
        control = BatchConsumer(
            self.deps.bootstrap,
            group_id=control_group(self.deps.app_id),
            topics=[topics.PROJECTIONS_CONTROL],
            handle=self._control,
            max_records=100,
            max_wait_s=0.5,
        )
        stats = asyncio.create_task(self._publish_stats(stop), name="projection-stats")
        try:
            await control.run(stop)
        finally:
            stop.set()
            stats.cancel()
            await self._stop_all()
            self.producer.close()
        if self._failure is not None:
            raise self._failure

    # ------------------------------------------------------------------- starting
    async def _start_all(self) -> None:
        versions = await catalog.versions(self.ch)
        known = {v.projection for v in versions}
        for name, projection in self.projections.items():
            if name not in known:
                first = catalog.first_version(name)
                await self._create_tables(projection, first.version, live=True)
                await self._record(first)
                versions.append(first)
        for v in versions:
            if v.state is State.PROMOTING and v.projection in self.projections:
                await self._finish_promotion(
                    self.projections[v.projection], v, versions, start=False
                )
        versions = await catalog.versions(self.ch)
        for v in versions:
            projection = self.projections.get(v.projection)
            if projection is None:
                if v.state in (State.LIVE, State.BUILDING):
                    log.warning("projection in the catalog is not installed", name=v.projection)
                continue
            if v.state is State.LIVE:
                await self._create_tables(projection, v.version, live=True)
            if v.state in (State.LIVE, State.BUILDING) and not await self._paused(v):
                await self._start(projection, v, live=v.state is State.LIVE)

    async def _create_tables(self, projection: Projection, version: int, *, live: bool) -> None:
        tables = projection.tables_of(version, live=live)
        for ddl in projection.ddl(tables):
            await self.ch.command(ddl)
        held = await catalog.table_versions(self.ch, tables.values())
        for physical in tables.values():
            if physical not in held:  # new, or made before tables carried a version
                text = catalog.comment(projection.name, version)
                await self.ch.command(f"ALTER TABLE {physical} MODIFY COMMENT '{text}'")

    async def _applied(self, projection: Projection, version: int) -> Offsets:
        if projection.store is Store.REDIS:
            key = catalog.CHECKPOINT_KEY.format(projection=projection.name, version=version)
            return catalog.redis_checkpoint(await self.deps.redis.hgetall(key))
        rows = await catalog.checkpoints(self.ch)
        return rows.get((projection.name, version), {})

    async def _start(self, projection: Projection, version: Version, *, live: bool) -> None:
        applied = await self._applied(projection, version.version)
        instance = Instance(projection, version, live=live, applied=applied, deps=self.deps)
        stop = asyncio.Event()
        task = asyncio.create_task(
            instance.run(stop), name=f"projection-{projection.name}-v{version.version}"
        )
        task.add_done_callback(self._on_done)
        self.running[(projection.name, version.version)] = _Running(instance, stop, task)
        log.info("projection started", name=projection.name, version=version.version,
                 live=live, from_checkpoint=bool(applied))  # fmt: skip

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._failure = task.exception()
        log.error("projection failed; stopping the runner", task=task.get_name(),
                  error=repr(self._failure))  # fmt: skip
        self._stop.set()

    async def _halt(self, name: str, version: int) -> None:
        running = self.running.pop((name, version), None)
        if running is None:
            return
        running.stop.set()
        await asyncio.gather(running.task, return_exceptions=True)

    async def _stop_all(self) -> None:
        for name, version in list(self.running):
            await self._halt(name, version)

    async def _record(self, version: Version) -> None:
        await self.ch.insert("projection_versions", [version.row()], catalog.VERSION_COLUMNS)

    # ------------------------------------------------------------------- control
    async def _control(self, records: Sequence[Record]) -> None:
        for record in records:
            try:
                request = Request.model_validate_json(record.value or b"")
            except ValidationError as exc:
                log.warning("control request unreadable", error=str(exc)[:300])
                continue
            if request.app_id != self.deps.app_id:
                continue  # another install on this broker
            projection = self.projections.get(request.projection)
            if projection is None:
                log.warning("control request for a projection not installed",
                            name=request.projection)  # fmt: skip
                continue
            versions = await self._versions_of(projection.name)
            target = next((v for v in versions if v.version == request.version), None)
            log.info("control request", action=str(request.action), name=projection.name,
                     version=request.version)  # fmt: skip
            if request.action is Action.REBUILD:
                if target is None and request.version == max(v.version for v in versions) + 1:
                    await self._rebuild(projection, request, versions)
            elif target is None:
                continue  # a version that never was: nothing to do
            elif request.action is Action.PROMOTE:
                if target.state is State.BUILDING:
                    await self._promote(projection, target, request.max_lag, versions)
            elif request.action in (Action.PAUSE, Action.RESUME):
                if target.state in (State.LIVE, State.BUILDING):
                    await self._pause(projection, target, request.action is Action.PAUSE)
            elif target.state in (State.RETIRED, State.BUILDING):
                await self._drop(projection, target)

    async def _paused(self, version: Version) -> bool:
        key = catalog.PAUSED_KEY.format(projection=version.projection, version=version.version)
        return bool(await self.deps.redis.exists(key))

    async def _pause(self, projection: Projection, version: Version, pause: bool) -> None:
        """Stop (``pause``) or start again the consumer of ``version``; its checkpoint
        is where it resumes, so a pause loses nothing and a repeated request changes
        nothing."""
        key = catalog.PAUSED_KEY.format(projection=projection.name, version=version.version)
        running = (projection.name, version.version) in self.running
        if pause:
            await self.deps.redis.set(key, "1")
            if running:
                await self._halt(projection.name, version.version)
            return
        await self.deps.redis.delete(key)
        if not running:
            await self._start(projection, version, live=version.state is State.LIVE)

    async def _versions_of(self, name: str) -> list[Version]:
        return [v for v in await catalog.versions(self.ch) if v.projection == name]

    async def _refuse(self, version: Version, why: str) -> None:
        log.warning("control request refused", name=version.projection, why=why)
        await self._record(version.moved(version.state, error=why))

    async def _rebuild(
        self, projection: Projection, request: Request, versions: Sequence[Version]
    ) -> None:
        """Start version ``request.version`` from ``request.source`` into tables of its own."""
        live = next(v for v in versions if v.state is State.LIVE)
        if not projection.rebuildable:
            await self._refuse(live, f"cannot be rebuilt yet: {projection.refusal}")
            return
        busy = next((v for v in versions if v.state in (State.BUILDING, State.PROMOTING)), None)
        if busy is not None:
            await self._refuse(live, f"version {busy.version} is {busy.state}: one at a time")
            return
        number, source = request.version, request.source
        start: Offsets = {}
        if source.startswith("offsets:"):
            start = {
                (t, int(p)): int(o) - 1
                for t, parts in orjson.loads(source.removeprefix("offsets:")).items()
                for p, o in parts.items()
            }
        elif source.startswith("time:"):
            at_ms = int(datetime.fromisoformat(source.removeprefix("time:")).timestamp() * 1000)
            for topic in projection.topics:
                found = await asyncio.to_thread(offsets_at, self.deps.bootstrap, topic, at_ms)
                start.update({(topic, p): o - 1 for p, o in found.items()})
        await self._create_tables(projection, number, live=False)
        if start:
            await self._checkpoint(projection, number, start)
        version = catalog.new_version(projection.name, number, source)
        await self._record(version)
        await self._start(projection, version, live=False)

    async def _promote(
        self, projection: Projection, building: Version, max_lag: int, versions: Sequence[Version]
    ) -> None:
        running = self.running.get((projection.name, building.version))
        if running is None:
            await self._refuse(building, "not running in this process")
            return
        behind = await self._lag(projection, running.instance.applied)
        if behind > max_lag:
            await self._refuse(building, f"lag {behind} > {max_lag}: not caught up yet")
            return
        promoting = building.moved(State.PROMOTING)
        await self._record(promoting)
        await self._finish_promotion(projection, promoting, versions, start=True)

    async def _finish_promotion(
        self, projection: Projection, new: Version, versions: Sequence[Version], *, start: bool
    ) -> None:
        """Exchange ``new``'s tables with the live ones, retire the old live version and
        (``start``) run ``new`` live. Re-runnable: each table's comment says whose rows it
        holds, so a crash between two steps is finished on the next start."""
        old = next(
            (v for v in versions if v.projection == projection.name and v.state is State.LIVE),
            None,
        )
        await self._halt(projection.name, new.version)
        if old is not None:
            await self._halt(projection.name, old.version)
        if projection.store is Store.REDIS:
            await self._swap_keys(projection, new, old)
        else:
            await self._exchange_tables(projection, new, old)
        if old is not None:
            await self._record(old.moved(State.RETIRED))
        live = new.moved(State.LIVE)
        await self._record(live)
        log.info("projection promoted", name=projection.name, version=new.version,
                 retired=old.version if old else None)  # fmt: skip
        if start:
            await self._start(projection, live, live=True)

    async def _exchange_tables(
        self, projection: Projection, new: Version, old: Version | None
    ) -> None:
        """ClickHouse: each table of ``new`` exchanged with the live one (atomic per pair),
        the old rows renamed to the old version's tables; skipped where the tables'
        comments say it is done."""
        names = [n for t in projection.tables for n in _candidates(t, new, old)]
        for table in projection.tables:
            held = await catalog.table_versions(self.ch, names)
            building = catalog.physical(table, new, live=False)
            if held.get(table, (None, 0))[1] != new.version:
                await self.ch.command(f"EXCHANGE TABLES {table} AND {building}")
            held = await catalog.table_versions(self.ch, names)
            if old is not None and held.get(building, (None, 0))[1] == old.version:
                retired = catalog.physical(table, old, live=False)
                await self.ch.command(f"RENAME TABLE {building} TO {retired}")

    async def _swap_keys(self, projection: Projection, new: Version, old: Version | None) -> None:
        """Redis: in one MULTI/EXEC (readers see all of it or none of it), every live key
        renamed under the old version's prefix, every key of ``new`` renamed to its live
        name, and ``LIVE_KEY`` set to ``new``; skipped if ``LIVE_KEY`` already says so.

        One transaction holds every key of the projection: fine for thousands, a pause of
        Redis for millions (measure before promoting a big one)."""
        redis = self.deps.redis
        marker = catalog.LIVE_KEY.format(projection=projection.name)
        if (await redis.get(marker) or b"").decode() == str(new.version):
            return
        live = await self._scan(projection, "")
        building = await self._scan(projection, catalog.key_prefix(new, live=False))
        prefix = len(catalog.key_prefix(new, live=False))
        async with redis.pipeline(transaction=True) as pipe:
            for key in live:
                if old is not None:
                    pipe.rename(key, catalog.key_prefix(old, live=False).encode() + key)
                else:
                    pipe.delete(key)
            for key in building:
                pipe.rename(key, key[prefix:])
            pipe.set(marker, str(new.version))
            # a key that expired between the SCAN and here fails its RENAME alone
            await pipe.execute(raise_on_error=False)

    async def _scan(self, projection: Projection, prefix: str) -> list[bytes]:
        keys: list[bytes] = []
        for pattern in projection.keys:
            keys.extend([k async for k in self.deps.redis.scan_iter(match=prefix + pattern,
                                                                    count=1000)])  # fmt: skip
        return keys

    async def _checkpoint(self, projection: Projection, version: int, offsets: Offsets) -> None:
        """Write ``offsets`` as ``version``'s checkpoint (where a rebuild starts)."""
        if projection.store is Store.REDIS:
            key = catalog.CHECKPOINT_KEY.format(projection=projection.name, version=version)
            await self.deps.redis.hset(key, mapping=catalog.redis_fields(offsets))
            return
        await self.ch.insert(
            "projection_checkpoints",
            catalog.checkpoint_rows(projection.name, version, offsets),
            catalog.CHECKPOINT_COLUMNS,
        )

    async def _drop(self, projection: Projection, version: Version) -> None:
        """Drop a retired version (or cancel a building one): its tables or keys, and its
        place in the catalog."""
        await self._halt(projection.name, version.version)
        for table in projection.tables:
            await self.ch.command(
                f"DROP TABLE IF EXISTS {catalog.physical(table, version, live=False)}"
            )
        if projection.store is Store.REDIS:
            keys = await self._scan(projection, catalog.key_prefix(version, live=False))
            for start in range(0, len(keys), 1000):
                await self.deps.redis.delete(*keys[start : start + 1000])
        await self._record(version.moved(State.DROPPED))

    async def _lag(self, projection: Projection, applied: Offsets) -> int:
        total = 0
        for topic in projection.topics:
            ends = await asyncio.to_thread(end_offsets, self.deps.bootstrap, topic)
            total += sum(catalog.lag({(topic, p): e for p, e in ends.items()}, applied).values())
        return total

    async def _publish_stats(self, stop: asyncio.Event) -> None:
        """Each second, every instance's stats into Redis for ``projections list``."""
        while not stop.is_set():
            await asyncio.sleep(1.0)
            try:
                async with self.deps.redis.pipeline(transaction=False) as pipe:
                    for (name, number), running in list(self.running.items()):
                        s = running.instance.stats
                        s.idle()
                        key = catalog.STATS_KEY.format(projection=name, version=number)
                        pipe.hset(key, mapping={
                            "applied": s.applied, "dead_lettered": s.dead_lettered,
                            "events_per_s": round(s.events_per_s, 1),
                            "last_error": s.last_error, "at": time.time(),
                        })  # fmt: skip
                        pipe.expire(key, 60)
                    await pipe.execute()
            except Exception as exc:
                log.debug("projection stats not published", error=str(exc))


def _candidates(table: str, new: Version, old: Version | None) -> list[str]:
    names = [table, catalog.physical(table, new, live=False)]
    if old is not None:
        names.append(catalog.physical(table, old, live=False))
    return names
