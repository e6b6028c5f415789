"""Dead-letter policy: a record an agent cannot process goes to ``<aggregate>.dlq``.

The record's key and value are kept byte for byte; headers say why and where it came
from, so an operator can fix the cause and re-publish it. Only *poison* records (cannot be
decoded, cannot apply) are dead-lettered; a store that is down is retried, never skipped.
"""

from __future__ import annotations

import structlog
from faust.types import EventT, TopicT

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


class DeadLetters:
    """Sends poison records to one dead-letter topic and waits for the broker's ack."""

    def __init__(self, topic: TopicT, *, agent: str) -> None:
        self.topic = topic
        self.agent = agent

    async def send(self, event: EventT, reason: str) -> None:
        """Dead-letter ``event`` with ``reason`` (one line, for the ``reason`` header)."""
        msg = event.message
        headers = provenance(
            reason, agent=self.agent, topic=msg.topic, partition=msg.partition, offset=msg.offset
        )
        log.error(
            "dead-lettered",
            agent=self.agent,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            reason=reason,
        )
        delivered = await self.topic.send(key=msg.key, value=msg.value, headers=headers)
        await delivered
