"""Dead-letter policy: a record an agent cannot process goes to ``<aggregate>.dlq``.

The record's key and value are kept byte for byte; headers say why and where it came
from, so an operator can fix the cause and re-publish it. Only *poison* records (cannot be
decoded, cannot apply) are dead-lettered; a store that is down is retried, never skipped.
"""

from __future__ import annotations

import structlog
from faust.types import EventT, TopicT

log = structlog.get_logger(__name__)


class DeadLetters:
    """Sends poison records to one dead-letter topic and waits for the broker's ack."""

    def __init__(self, topic: TopicT, *, agent: str) -> None:
        self.topic = topic
        self.agent = agent

    async def send(self, event: EventT, reason: str) -> None:
        """Dead-letter ``event`` with ``reason`` (one line, for the ``reason`` header)."""
        msg = event.message
        headers = [
            ("reason", reason.encode()[:4000]),
            ("agent", self.agent.encode()),
            ("source.topic", msg.topic.encode()),
            ("source.partition", str(msg.partition).encode()),
            ("source.offset", str(msg.offset).encode()),
        ]
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
