"""Dead-letter policy: a record an agent cannot process goes to ``<aggregate>.dlq``.

The record's key and value are kept byte for byte; headers say why and where it came
from, so an operator can fix the cause and re-publish it. Only *poison* records (cannot be
decoded, cannot apply) are dead-lettered; a store that is down is retried, never skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from faust.types import TopicT

from connectors.kafka import AsyncProducer

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
    """Sends poison records to one dead-letter topic and waits for the broker's ack."""

    def __init__(self, publish: Publish, *, agent: str) -> None:
        self.publish = publish
        self.agent = agent

    @classmethod
    def to_faust_topic(cls, topic: TopicT, *, agent: str) -> DeadLetters:
        """For Faust agents: sent through the app's producer (flushed before commits)."""

        async def publish(key: bytes | None, value: bytes, headers: list) -> None:
            await (await topic.send(key=key, value=value, headers=headers))

        return cls(publish, agent=agent)

    @classmethod
    def to_topic(cls, producer: AsyncProducer, topic: str, *, agent: str) -> DeadLetters:
        """For batch consumers: sent by ``producer``, acked before the batch commits."""

        async def publish(key: bytes | None, value: bytes, headers: list) -> None:
            await producer.produce(topic, value, key=key, headers=headers)

        return cls(publish, agent=agent)

    async def send(self, record: SourceRecord, reason: str) -> None:
        """Dead-letter ``record`` with ``reason`` (one line, for the ``reason`` header)."""
        headers = provenance(
            reason,
            agent=self.agent,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        log.error(
            "dead-lettered",
            agent=self.agent,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
        await self.publish(record.key, record.value or b"", headers)
