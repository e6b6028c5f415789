"""Uniqueness reservations: race-free, because one partition owns each unique value.

A command that needs unique values (CreateUser: email and username; UpdateAccount: a new
email) enters at ``users.reservations`` keyed by its first claim, e.g. ``email:a@b.c``.
The partition that owns that key holds it for the command's aggregate id and passes the
command on to the next claim, and after the last one to ``users.commands``. Two
concurrent creates with one email meet in that one partition, in order: exactly one
holds it, the other is rejected with ``duplicate_email`` (never ask an eventually
consistent read model; README.md, "How it fits together", Uniqueness). A chain that
fails releases what it took.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from faust.types import EventT, TableT, TopicT

from pipeline.common.deadletter import DeadLetters
from pipeline.domain.handling import CommandResult
from pipeline.domain.results import RejectionReason
from pipeline.domain.users.roster import ROSTER_KEY
from pipeline.write.agents.commands import CommandProcessor
from pipeline.write.agents.roster import RosterKeeper
from pipeline.write.codecs import (
    MalformedMessage,
    Reservation,
    command_from_dict,
    decode_reservation,
    encode_command,
    encode_reservation,
)
from pipeline.write.routing import ClaimKeys, submission

log = structlog.get_logger(__name__)

_ROSTER_KEY = ROSTER_KEY.encode()

_REASONS = {
    "email": (RejectionReason.DUPLICATE_EMAIL, "email is already in use"),
    "username": (RejectionReason.DUPLICATE_USERNAME, "username is already taken"),
}


@dataclass(kw_only=True, eq=False)
class ReservationProcessor:
    """Holds claim -> owner in a table partitioned like ``users.reservations``."""

    table: TableT
    reservations: TopicT
    commands: TopicT
    dead_letters: DeadLetters
    replies: CommandProcessor
    topic: Callable[[str], TopicT]
    claim_keys: ClaimKeys
    roster: RosterKeeper | None = None
    """The users' admin roster, whose messages share the topic (key ``ROSTER_KEY``)."""

    async def process(self, event: EventT) -> None:
        try:
            if self.roster is not None and event.message.key == _ROSTER_KEY:
                await self.roster.process(event)
                return
            message = decode_reservation(event.message.value)
            if message.op == "reserve":
                await self._reserve(message)
            else:
                self._release(message)
        except MalformedMessage as exc:
            await self.dead_letters.send(event.message, str(exc))

    def _release(self, message: Reservation) -> None:
        if self.table.get(message.key) == message.owner:
            del self.table[message.key]

    async def _reserve(self, message: Reservation) -> None:
        claim = message.key
        holder = self.table.get(claim)
        if holder is not None and holder != message.owner:
            await self._reject(message, claim)
            return
        taken = message.taken
        if holder is None:
            self.table[claim] = message.owner
            taken = (*taken, claim)
        if message.index + 1 < len(message.claims):
            onward = Reservation(
                op="reserve",
                owner=message.owner,
                claims=message.claims,
                index=message.index + 1,
                taken=taken,
                command=message.command,
            )
            await self.reservations.send(key=onward.key.encode(), value=encode_reservation(onward))
            return
        command = command_from_dict(self.replies.aggregate, message.command or {})
        await self.commands.send(key=command.aggregate_id.encode(), value=encode_command(command))

    async def _compensate(self, command: dict[str, Any], reason: str) -> None:
        """What the aggregate says undoes the refused command's cause (a conversion's
        student refused -> the prospect may convert again: ``Aggregate.compensations``),
        sent before the refusal is answered: whoever reads the answer finds it under way."""
        aggregate = self.replies.aggregate
        try:
            refused = command_from_dict(aggregate, command)
        except ValueError:  # not a command of this aggregate: nothing it could have caused
            return
        for undo in aggregate.compensations(refused, reason):
            name, key, value = submission(undo, self.claim_keys)
            await self.topic(name).send(key=key, value=value)

    async def _reject(self, message: Reservation, claim: str) -> None:
        for held in message.taken:
            release = Reservation(op="release", owner=message.owner, claim=held)
            await self.reservations.send(key=held.encode(), value=encode_reservation(release))
        command = message.command or {}
        actor = command.get("actor")  # who may read this result (GET /api/commands/{id})
        reason, text = _REASONS.get(claim.split(":", 1)[0], (RejectionReason.CONFLICT, "taken"))
        await self._compensate(command, reason.value)
        out = self.replies.kafka.deliveries()
        self.replies.reply(
            out,
            CommandResult(
                command_id=str(command.get("command_id", "")),
                status="rejected",
                aggregate_type=self.replies.spec.aggregate_type,
                aggregate_id=message.owner,
                version=0,
                reason=reason.value,
                message=text,
                field=claim.split(":", 1)[0],
                actor=actor if isinstance(actor, str) else None,
            ),
        )
        await out.wait()
