"""Dead-letter policy: a record an agent cannot process goes to a dead-letter topic
(``<aggregate>.dlq``, ``tracking.dlq``, ``projections.dlq``), one way everywhere.

The record's key is kept, and its value byte for byte unless the caller gives a body that
says more (validation's refusals carry their reasons and the event); headers say why and
where it came from, so an operator can fix the cause and re-publish it. Only *poison*
records (cannot be decoded, cannot apply, refused for what they hold) are dead-lettered;
a store that is down is retried, never skipped. How the letter leaves is the caller's
commit order: awaited one by one (``send``: Faust agents, the projection runner) or
queued into the batch the caller waits on before it commits (``queue``: the tracking
sinks and validation, thousands of records a batch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from faust.types import TopicT

from connectors import metrics
from connectors.kafka import AsyncProducer, Deliveries

log = structlog.get_logger(__name__)


def provenance(
    reason: str, *, agent: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The headers every dead letter carries: why, who, and where it came from."""
    return [
        ("reason", reason.encode()[:4000]),
        ("agent", agent.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]


class SourceRecord(Protocol):
    """Where a record came from: a Faust ``event.message`` or a ``connectors.batch.Record``
    (both have these attributes)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


Publish = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[Any]]
"""(key, value, headers) -> resolves once the dead-letter topic has the record."""


class DeadLetters:
    """Poison records of one agent to one dead-letter topic."""

    def __init__(self, topic: str, *, agent: str, publish: Publish | None = None) -> None:
        self.topic = topic
        self.agent = agent
        self.publish = publish

    @classmethod
    def to_faust_topic(cls, topic: TopicT, *, agent: str) -> DeadLetters:
        """For Faust agents: sent through the app's producer (flushed before commits)."""

        async def publish(key: bytes | None, value: bytes, headers: list) -> None:
            await (await topic.send(key=key, value=value, headers=headers))

        return cls(topic.get_topic_name(), agent=agent, publish=publish)

    @classmethod
    def to_topic(cls, producer: AsyncProducer, topic: str, *, agent: str) -> DeadLetters:
        """For batch consumers: sent by ``producer``, acked before the batch commits."""

        async def publish(key: bytes | None, value: bytes, headers: list) -> None:
            await producer.produce(topic, value, key=key, headers=headers)

        return cls(topic, agent=agent, publish=publish)

    def _letter(
        self, record: SourceRecord, reason: str, value: bytes | None
    ) -> tuple[bytes, list[tuple[str, bytes]]]:
        headers = provenance(
            reason,
            agent=self.agent,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        metrics.DEAD_LETTERS.labels(self.topic, self.agent).inc()
        log.warning("dead-lettered", agent=self.agent, topic=record.topic,
                    partition=record.partition, offset=record.offset,
                    reason=reason[:200])  # fmt: skip
        return (record.value or b"") if value is None else value, headers

    async def send(self, record: SourceRecord, reason: str, *, value: bytes | None = None) -> None:
        """Dead-letter ``record`` (or ``value`` in its place) with ``reason`` (one line, for
        the ``reason`` header) and wait for the broker's ack. Raises ``ValueError`` on a
        ``DeadLetters`` made without a way to publish (use :meth:`queue`)."""
        if self.publish is None:
            raise ValueError(f"dead letters of {self.agent} are queued, not sent")
        body, headers = self._letter(record, reason, value)
        await self.publish(record.key, body, headers)

    def queue(
        self, out: Deliveries, record: SourceRecord, reason: str, *, value: bytes | None = None
    ) -> None:
        """Dead-letter ``record`` (or ``value``) into ``out``, the batch of deliveries the
        caller waits for before it commits the batch's offsets."""
        body, headers = self._letter(record, reason, value)
        out.produce(self.topic, body, key=record.key, headers=headers)
