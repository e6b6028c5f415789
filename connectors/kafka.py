"""Kafka through confluent-kafka: topic setup, an asyncio-friendly producer, lag.

Faust (aiokafka) runs the agents; everything else that talks to Kafka comes here.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import tenacity
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import metrics
from connectors.exceptions import KafkaDeliveryError, TopicSetupError

# aiokafka (Faust) places keys with Java's murmur2; librdkafka's default is CRC32. Commands
# for one aggregate are produced by both clients, so both must agree or one user's commands
# would land on two partitions and lose their order and their table state.
PARTITIONER = "murmur2_random"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to create at start: its name, topic configs (``retention.ms``, ...), and
    its partitions (``None``: the count ``ensure_topics`` is given)."""

    name: str
    config: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None


def base_config(bootstrap: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "log_level": 3}


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(base_config(bootstrap))


def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec], *, partitions: int, replication: int
) -> list[str]:
    """Create missing topics; check existing ones have the expected partition count.

    Returns the names created now. Idempotent: safe on every start of every process.

    Raises:
        TopicSetupError: creation failed, or an existing topic has another partition count
            (co-partitioned tables would be wrong).
    """
    client = admin(bootstrap)
    existing = client.list_topics(timeout=10).topics
    wanted = {s.name: s for s in specs}
    created: list[str] = []
    new = [
        NewTopic(s.name, s.partitions or partitions, replication, config=s.config)
        for name, s in wanted.items()
        if name not in existing
    ]
    if new:
        for name, future in client.create_topics(new, request_timeout=30).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicSetupError(f"cannot create topic {name}: {exc}") from exc
    existing = _wait_listed(client, wanted, timeout_s=30)
    for name, spec in wanted.items():
        expected = spec.partitions or partitions
        actual = len(existing[name].partitions)
        if actual != expected:
            raise TopicSetupError(f"topic {name} has {actual} partitions, expected {expected}")
    return created


# librdkafka does not flag these retriable, yet on a fresh topic they clear within a
# second or two, once the partitions' leaders are elected (measured: 1 s on a cold broker).
_LEADERSHIP_PENDING = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


def _retriable(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException):
        return False
    error = exc.args[0]
    return error.retriable() or error.code() in _LEADERSHIP_PENDING


@tenacity.retry(
    retry=tenacity.retry_if_exception(_retriable),
    wait=tenacity.wait_exponential(multiplier=0.1, max=2),
    stop=tenacity.stop_after_delay(30),
    reraise=True,
)
def topic_has_records(bootstrap: str, topic: str, *, timeout_s: float = 10) -> bool:
    """True if any partition of ``topic`` holds a record (high watermark above low);
    False for an empty or missing topic. Retried for up to 30 s on retriable broker
    errors: right after a topic is created its partitions answer NOT_LEADER_FOR_PARTITION
    until their leaders are elected (seen on a cold start).

    Raises:
        KafkaException: the broker still refused after 30 s, or refused for good.
    """
    consumer = Consumer({**base_config(bootstrap), "group.id": "streamfold-watermarks"})
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return False
        for partition in meta.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                return True
        return False
    finally:
        consumer.close()


def _wait_listed(client: AdminClient, names: Iterable[str], *, timeout_s: float) -> dict:
    """Topic metadata once every name is listed with its partitions: a broker answers
    CreateTopics before its metadata shows the new topics (seen: KeyError on a fresh KRaft
    broker).

    Raises:
        TopicSetupError: a topic is still missing after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        topics = client.list_topics(timeout=10).topics
        # a listed topic whose partitions are not known yet is not usable either
        missing = [
            n
            for n in names
            if n not in topics or topics[n].error is not None or not topics[n].partitions
        ]
        if not missing:
            return topics
        if time.monotonic() > deadline:
            raise TopicSetupError(f"topics not visible after {timeout_s:.0f} s: {missing}")
        time.sleep(0.2)


class AsyncProducer:
    """confluent-kafka producer for asyncio: ``await produce(...)`` resolves on broker ack.

    acks=all with the idempotent producer, so a retried send never duplicates a record.
    A background thread polls for delivery reports, so there is no per-record poll cost
    on the event loop; the callback hands the result back with ``call_soon_threadsafe``.
    """

    def __init__(
        self, bootstrap: str, *, client_id: str, delivery_timeout_s: float = 300.0, **extra: Any
    ) -> None:
        """``delivery_timeout_s``: how long a record may wait for the brokers before its
        future fails with KafkaDeliveryError (librdkafka ``message.timeout.ms``; its
        default, 300 s, is also ours for pipeline stages). The API passes its command
        timeout, so a request on a dead broker answers 503 instead of hanging."""
        config = {
            **base_config(bootstrap),
            "client.id": client_id,
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
            "linger.ms": 5,
            "compression.type": "lz4",
            **extra,
        }
        self._producer = Producer(config)
        self.client_id = client_id
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def produce_nowait(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Message]:
        """Enqueue one record; the returned future resolves with the delivered Message.

        Raises (through the future): KafkaDeliveryError if the brokers refused the record.
        BufferError is raised directly when the local queue is full (back-pressure).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, future, err, msg)

        self._producer.produce(
            topic, value=value, key=key, headers=headers, on_delivery=on_delivery
        )
        return future

    async def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Message:
        return await self.produce_nowait(topic, value, key=key, headers=headers)

    def deliveries(self) -> Deliveries:
        """A batch of records whose acks are awaited once: ``produce`` each, then
        ``await wait()``. For hot paths: one wake-up of the event loop per batch instead of
        a future and a cross-thread call per record (measured under ``bench/ingest.py``:
        ~10 % of an API process went to per-record futures)."""
        return Deliveries(self._producer, asyncio.get_running_loop(), client=self.client_id)

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._stop.set()
        self._poller.join(timeout=2)


class Deliveries:
    """Records produced together, acknowledged together (see ``AsyncProducer.deliveries``).

    Delivery reports arrive on the producer's poll thread while records are still being
    produced on the event loop, so the count is kept under a lock and the batch settles
    only once ``wait`` has sealed it and every record has its report.
    """

    def __init__(
        self, producer: Producer, loop: asyncio.AbstractEventLoop, *, client: str = ""
    ) -> None:
        self._producer = producer
        self._client = client
        self._started = 0.0  # when the first record was produced
        self._loop = loop
        self._done: asyncio.Future[None] = loop.create_future()
        self._lock = threading.Lock()
        self._sent = 0
        self._reported = 0
        self._sealed = False
        self._error: KafkaDeliveryError | None = None

    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Enqueue one record. Raises BufferError when librdkafka's local queue is full
        (back-pressure; the records enqueued before it are still delivered)."""
        if not self._sent:
            # from here, not from the group's creation: a validation batch makes its group
            # and then spends most of its time deciding, which is not the produce latency
            self._started = time.perf_counter()
        self._producer.produce(
            topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
        )
        with self._lock:
            self._sent += 1

    def __len__(self) -> int:
        return self._sent

    async def wait(self) -> None:
        """Return once every record produced so far is acknowledged.

        Raises:
            KafkaDeliveryError: a record was refused or timed out (``message.timeout.ms``);
                the first such error, after every record has its report.
        """
        with self._lock:
            self._sealed = True
            settled = self._reported == self._sent
        if settled:
            self._settle()
        await self._done

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            self._reported += 1
            if err is not None and self._error is None:
                self._error = KafkaDeliveryError(f"{msg.topic()}: {err.str()}")
            # sealed: wait() has been called, so no more records come and sent is final
            settled = self._sealed and self._reported == self._sent
        if settled:
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self._done.done():
            return
        if self._sent:
            elapsed = time.perf_counter() - self._started
            metrics.PRODUCE_SECONDS.labels(self._client).observe(elapsed)
        if self._error is not None:
            self._done.set_exception(self._error)
        else:
            self._done.set_result(None)


def _settle(future: asyncio.Future[Message], err: KafkaError | None, msg: Message) -> None:
    if future.done():
        return
    if err is not None:
        future.set_exception(KafkaDeliveryError(f"{msg.topic()}: {err.str()}"))
    else:
        future.set_result(msg)


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """High watermark per partition of ``topic`` (the offset the next record will get)."""
    consumer = Consumer({**base_config(bootstrap), "group.id": "streamfold-probe"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        }
    finally:
        consumer.close()


def group_positions(
    bootstrap: str, group: str, topics: Iterable[str]
) -> dict[tuple[str, int], tuple[int, int]]:
    """(topic, partition) -> (committed offset, high watermark) for consumer group
    ``group``. A partition the group never committed counts from its low watermark."""
    consumer = Consumer({**base_config(bootstrap), "group.id": group, "enable.auto.commit": False})
    try:
        positions: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            parts = [TopicPartition(topic, p) for p in meta.partitions]
            for tp in consumer.committed(parts, timeout=10):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
                positions[(topic, tp.partition)] = (tp.offset if tp.offset >= 0 else low, high)
        return positions
    finally:
        consumer.close()


def consumer_lag(bootstrap: str, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Records not yet committed by consumer group ``group``, summed per topic.

    A partition the group never committed counts from its low watermark, so a worker that
    has not started yet shows its whole backlog.
    """
    topics = list(topics)
    lag = dict.fromkeys(topics, 0)
    for (topic, _), (committed, high) in group_positions(bootstrap, group, topics).items():
        lag[topic] += max(0, high - committed)
    return lag


def offsets_at(bootstrap: str, topic: str, at_ms: int) -> dict[int, int]:
    """Per partition of ``topic``, the offset of its first record with a timestamp at or
    after ``at_ms`` (Unix ms; broker ``ListOffsets``), or the high watermark if none is."""
    consumer = Consumer({**base_config(bootstrap), "group.id": "streamfold-probe"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        asked = [TopicPartition(topic, p, at_ms) for p in meta.partitions]
        found = consumer.offsets_for_times(asked, timeout=10)
        return {
            tp.partition: tp.offset if tp.offset >= 0
            else consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)[1]
            for tp in found
        }  # fmt: skip
    finally:
        consumer.close()
