"""The identity process manager: events of ``prospects.events`` that cause a command on
another aggregate (a merge's later steps, a conversion's new student or instructor).

The rule is pure (``pipeline/domain/identity/reactions.py``); this agent decodes, asks
it, and submits the commands where the API would (``routing.submission``: through the
reservations when they claim an e-mail). Delivery is at least once and that is safe: a
re-delivered event causes the same command id, which the aggregate answers from its
memory without a second event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faust.types import EventT

from pipeline.common.deadletter import DeadLetters
from pipeline.domain.identity.reactions import reactions
from pipeline.write.routing import ClaimKeys, submission
from schemas.codec import AvroCodec
from schemas.exceptions import SchemaError


@dataclass(kw_only=True, eq=False)
class ReactionProcessor:
    """``topic(name)`` gives the Faust topic to send a command to."""

    codec: AvroCodec
    claim_keys: ClaimKeys
    topic: Callable[[str], Any]
    dead_letters: DeadLetters

    async def process(self, event: EventT) -> None:
        try:
            envelope = self.codec.decode(event.message.value)
        except SchemaError as exc:
            await self.dead_letters.send(event.message, f"undecodable event: {exc}")
            return
        for command in reactions(envelope):
            name, key, value = submission(command, self.claim_keys)
            await self.topic(name).send(key=key, value=value)
