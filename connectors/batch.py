"""Batch consumers on confluent-kafka: the tracking hot path.

Measured (bench/ingest.py, medians of 3): validating ``tracking.raw`` with a plain
confluent-kafka batch consumer ran at 7,610 events/s against 1,001 for the Faust agent,
whose per-event path (one coroutine hop and bookkeeping per record) dominated. The
command side stays on Faust, where changelog-backed tables carry the state.

Commit order for one batch (at least once):

1. ``consume`` up to ``max_records`` within ``max_wait_s``.
2. ``handle(records)``: it must return only when everything it produced is acked.
3. Commit each partition's highest offset + 1, synchronously.

A crash before 3 re-delivers the batch; the handlers are idempotent (deterministic event
ids, dedup in the sink), so re-delivery changes nothing. So does a commit refused because
the group moved on: a handler that took longer than ``max.poll.interval.ms`` has been
dropped from the group, its partitions went to another member, which re-reads the batch
from the last committed offset. That is logged and the consumer goes on (it rejoins on its
next poll); it used to stop the loop, and with it the whole process.

A handler can also find out, mid-batch, that its member has been dropped
(:func:`still_member`) and give the batch up (:class:`PartitionsLost`) instead of writing
it beside the successor: the tracking sink asks before every insert attempt, so a member
that spent longer than ``max.poll.interval.ms`` retrying a store that was down does not
insert, once the store is back, a batch its successor has already stored under other
batch boundaries.

Progress (for ``/readyz``): ``last_progress`` is when the consumer last committed a batch
or found nothing waiting for it; a handler stuck on a batch stops it moving.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from connectors import metrics
from connectors.kafka import AsyncProducer, base_config

log = structlog.get_logger(__name__)
T = TypeVar("T")

LAG_REPORT_S = 1.0


class Record(NamedTuple):
    """One consumed record, decoupled from the client library. A named tuple rather than a
    frozen dataclass: one is made per Kafka message, and a frozen dataclass's ``__init__``
    (``object.__setattr__`` per field) took 2.2 µs against 0.8, about 110 ms of each
    50,000-record batch of the tracking sink (measured 2026-12-07)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, msg: Message) -> Record:
        headers = msg.headers()  # None for most records: no generator made for them
        return cls(
            msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(),
            tuple((k, v or b"") for k, v in headers) if headers else (),
        )  # fmt: skip


def highest_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the highest offset among ``records`` (what a commit or a
    checkpoint covers, plus one)."""
    highs: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if r.offset > highs.get(key, -1):
            highs[key] = r.offset
    return highs


Handler = Callable[[Sequence[Record]], Awaitable[None]]
StartAt = Callable[[str, int], int | None]
"""(topic, partition) -> the offset to read next, or None for the group's committed offset
(then ``auto.offset.reset``). Projections keep their own checkpoint with the read model and
start there: the group's committed offsets are only a hint."""

# Commit errors that mean "these partitions are not yours any more" (a rebalance went on
# while the handler ran, or the member was dropped for exceeding max.poll.interval.ms;
# measured with librdkafka 2.16: UNKNOWN_MEMBER_ID, then ILLEGAL_GENERATION on a retry).
# Whoever owns them now re-reads from the last committed offset.
_REBALANCED = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._STATE,
    }
)


class PartitionsLost(Exception):
    """Raised by a handler that gives its batch up because its member left the group
    (:func:`still_member` is False): the consumer logs it, commits nothing and goes on;
    the partitions' new owner re-reads the batch from the last committed offset."""


_RUNNING: contextvars.ContextVar[BatchConsumer | None] = contextvars.ContextVar(
    "batch_consumer", default=None
)


def still_member() -> bool:
    """False once the ``BatchConsumer`` running the calling handler has been dropped from
    its group (librdkafka leaves the group, and forgets its member id, when a handler holds
    a batch longer than ``max.poll.interval.ms``; measured with librdkafka 2.16: its
    ``memberid()`` is None from then until its next poll rejoins). True outside a
    handler. Cheap: no broker round trip."""
    consumer = _RUNNING.get()
    return consumer is None or consumer.in_group()


BIG_BATCH_RECORDS = 10_000
"""From this many records a batch, a consumer asks the broker for big fetches."""


def _fetch_config(max_records: int, max_wait_s: float) -> dict[str, Any]:
    """librdkafka fetch settings for batches of ``max_records`` gathered within
    ``max_wait_s``. A consumer of big batches (the tracking sink and plugins) asks for 1 MiB
    a fetch, held by the broker for at most half its batch window: with librdkafka's
    defaults (1 byte, 500 ms) each produce request of the API woke every such consumer's
    fetch, and the broker spent 0.5-0.65 of a core answering small fetches under load,
    about 47 µs an event at batches of 100 (bench/ingest.py, CPU per role). Small batches
    keep the defaults: their consumers (command statuses, timelines) want each record
    soon."""
    if max_records < BIG_BATCH_RECORDS:
        return {}
    return {"fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": max(1, int(max_wait_s * 500))}


class BatchConsumer:
    """One consumer-group member running ``handle`` over batches until ``stop`` is set."""

    def __init__(
        self,
        bootstrap: str,
        *,
        group_id: str,
        topics: Sequence[str],
        handle: Handler,
        max_records: int = 2000,
        max_wait_s: float = 0.2,
        config: Mapping[str, Any] | None = None,
        start_at: StartAt | None = None,
    ) -> None:
        """``config``: librdkafka settings over the defaults below (tests shorten
        ``max.poll.interval.ms``). ``start_at``: where each newly assigned partition starts
        (see :data:`StartAt`); without it, at the group's committed offset."""
        self.group_id = group_id
        self.start_at = start_at
        self.topics = list(topics)
        self.handle = handle
        self.max_records = max_records
        self.max_wait_s = max_wait_s
        # Its own thread: ``consume`` blocks for up to ``max_wait_s`` on every call, and
        # on asyncio's default pool (6 threads here) three such consumers starved the
        # ClickHouse calls, argon2 and /readyz that share it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=group_id)
        self._consumer = Consumer(
            {
                **base_config(bootstrap),
                "group.id": group_id,
                "client.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # a SIGKILLed member holds its partitions until this expires (librdkafka's
                # default is 45 s): recovery after a crash waits this long at most
                "session.timeout.ms": 10_000,
                **_fetch_config(max_records, max_wait_s),
                **(config or {}),
            }
        )
        self._lag_reported = 0.0
        self.last_progress = time.monotonic()
        """``time.monotonic()`` when this consumer last committed a batch or found nothing
        waiting for it (an empty poll); starts at construction."""

    def in_group(self) -> bool:
        """Whether this member holds a member id in its group (see :func:`still_member`)."""
        return self._consumer.memberid() is not None

    def stalled_s(self) -> float:
        """Seconds since ``last_progress``: grows while a handler is stuck on a batch."""
        return time.monotonic() - self.last_progress

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; a handler error stops the loop without committing
        the batch (fail loudly: the batch is re-delivered after a restart)."""
        if self.start_at is None:
            self._consumer.subscribe(self.topics)
        else:
            self._consumer.subscribe(self.topics, on_assign=self._assigned)
        running = _RUNNING.set(self)  # for still_member() in the handler (same task)
        try:
            while not stop.is_set():
                messages = await self._blocking(
                    self._consumer.consume, self.max_records, self.max_wait_s
                )
                batch = [Record.of(m) for m in messages if m.error() is None]
                for m in messages:
                    if m.error() is not None:
                        log.warning("consume error", group=self.group_id, error=str(m.error()))
                self._report_lag()
                if not batch:
                    if not messages:  # nothing waiting for this member: not stalled
                        self.last_progress = time.monotonic()
                    continue
                metrics.BATCH_RECORDS.labels(self.group_id).observe(len(batch))
                try:
                    with metrics.timed(metrics.BATCH_SECONDS, self.group_id):
                        await self.handle(batch)
                except PartitionsLost as exc:
                    log.warning(
                        "batch given up: this member left its group, the partitions' new owner"
                        " re-reads it",
                        group=self.group_id,
                        why=str(exc),
                    )
                    continue
                high = highest_offsets(batch)
                offsets = [TopicPartition(t, p, o + 1) for (t, p), o in high.items()]
                if await self._commit(offsets):
                    self.last_progress = time.monotonic()
        finally:
            _RUNNING.reset(running)
            await self._blocking(self._consumer.close)
            self._thread.shutdown(wait=False)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """librdkafka's rebalance callback (on the consuming thread): start each partition
        where ``start_at`` says. The eager assignor hands over the whole assignment."""
        assert self.start_at is not None
        for tp in partitions:
            offset = self.start_at(tp.topic, tp.partition)
            if offset is not None:
                tp.offset = offset
        consumer.assign(partitions)

    def _report_lag(self) -> None:
        """Set ``streamfold_consumer_lag_records`` for each assigned partition, at most
        once per ``LAG_REPORT_S``. Local calls only: the high watermark is the one
        librdkafka cached from its last fetch response, the position is the client's."""
        now = time.monotonic()
        if now - self._lag_reported < LAG_REPORT_S:
            return
        self._lag_reported = now
        for tp in self._consumer.position(self._consumer.assignment()):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                lag = metrics.CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition))
                lag.set(max(0, high - tp.offset))

    async def _commit(self, offsets: list[TopicPartition]) -> bool:
        """Commit synchronously; True if the broker took it.

        A commit refused because the partitions moved to another member (``_REBALANCED``)
        or failing for a retriable reason (the coordinator moving, a timeout) is logged and
        False: the handled batch is re-read by the partitions' owner, or covered by the next
        commit (offsets are absolute), and handlers are idempotent. Anything else raises.

        Raises:
            KafkaException: a fatal or unexpected commit error (the loop stops).
        """
        try:
            await self._blocking(self._consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() in _REBALANCED:
                log.warning(
                    "commit refused: the partitions moved to another member, which re-reads"
                    " the batch",
                    group=self.group_id,
                    error=error.name(),
                )
                return False
            if error.retriable():
                log.warning("commit failed, retried with the next batch",
                            group=self.group_id, error=error.name())  # fmt: skip
                return False
            raise
        return True

    async def _blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))


@dataclass
class BatchPipeline:
    """Stages on confluent-kafka batch consumers (``connectors/batch.py`` says why not
    Faust) sharing one producer: the projections, and the tracking hot path."""

    producer: AsyncProducer
    consumers: list[BatchConsumer]

    async def run(self, stop: asyncio.Event) -> None:
        """Run every consumer until ``stop``; if one fails, stop the others and raise."""
        tasks = [asyncio.create_task(c.run(stop), name=c.group_id) for c in self.consumers]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.producer.close()
