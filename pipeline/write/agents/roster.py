"""The admin roster's keeper: the one partition that approves taking an admin's rights
(``pipeline.domain.users.roster`` has the rules and why they keep an active admin).

It runs inside the users reservation agent (the roster is the row ``ROSTER_KEY`` of its
table, so ``users.reservations`` carries its messages, keyed by that one key). A removal
it approves goes back to ``users.commands`` with the ``streamfold-admitted`` header; one
it refuses is answered on ``command.results`` (``last_admin``), never decided. The roster
is written before the approval is sent: a redelivered request finds its command id among
the leaving and is approved again, so a crash between the two loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from faust.types import EventT, TableT, TopicT

from pipeline.domain.handling import CommandResult
from pipeline.domain.results import Rejection
from pipeline.domain.users.roster import ROSTER_KEY, Roster
from pipeline.write.codecs import RosterMessage, decode_roster
from pipeline.write.routing import ADMITTED

if TYPE_CHECKING:
    from pipeline.write.agents.commands import CommandProcessor


@dataclass(kw_only=True, eq=False)
class RosterKeeper:
    """``table``: the users claims table (the roster is its ``ROSTER_KEY`` row);
    ``commands``: ``users.commands``; ``replies``: the users command processor (its
    producer answers refusals)."""

    table: TableT
    commands: TopicT
    replies: CommandProcessor

    async def process(self, event: EventT) -> None:
        """Raises MalformedMessage for a record that is no roster message."""
        message = decode_roster(event.message.value)
        roster = Roster.from_dict(self.table.get(ROSTER_KEY))
        if message.op == "seat":
            seated = roster.seat(
                message.user_id, message.version, message.active_admin, message.settles
            )
            if seated != roster:
                self.table[ROSTER_KEY] = seated.to_dict()
            return
        command = message.command or {}
        answer = roster.request_removal(message.user_id, str(message.command_id))
        if isinstance(answer, Rejection):
            await self._refuse(message, command, answer)
            return
        if answer != roster:
            self.table[ROSTER_KEY] = answer.to_dict()
        await self.commands.send(
            key=message.user_id.encode(), value=orjson.dumps(command), headers=[(ADMITTED, b"1")]
        )

    async def _refuse(
        self, message: RosterMessage, command: dict[str, object], refusal: Rejection
    ) -> None:
        actor = command.get("actor")  # who may read this result (GET /api/commands/{id})
        out = self.replies.kafka.deliveries()
        self.replies.reply(
            out,
            CommandResult(
                command_id=str(message.command_id),
                status="rejected",
                aggregate_type=self.replies.spec.aggregate_type,
                aggregate_id=message.user_id,
                version=0,
                reason=refusal.reason.value,
                message=refusal.message,
                actor=actor if isinstance(actor, str) else None,
            ),
        )
        await out.wait()
