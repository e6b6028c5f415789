"""The command agent: load state from the table, ``handle`` (pure), emit, reply; a batch
of commands at a time, one wait for the brokers' acks per batch.

Per batch, in this order (the order is what makes a crash at any point harmless):

1. Decode each command; a malformed record is dead-lettered (and answered if it has a
   command id).
2. ``handle(snapshot, command)`` for each, in offset order, a later command of the same
   aggregate seeing the snapshot an earlier one left: a command id seen before returns
   its original result and emits nothing; otherwise decide + evolve give the envelopes
   and the new snapshot.
3. Send every envelope to ``<aggregate>.events``, then wait once for all the acks.
4. Store each touched aggregate's newest snapshot in the table (changelog-backed).
5. Release uniqueness claims the commands no longer need.
6. Send the results to ``command.results``; ack the batch's records.

A crash at any point replays the batch from the last committed offset (Faust flushes
its producer before it commits offsets, and commits only acked records, so nothing sent
is lost behind a commit). If 4 did not reach the changelog, the replay yields
byte-identical envelopes (event ids, versions and times are deterministic) that
idempotent projections ignore; if it did, step 2 answers with the stored result, marked
``duplicate``. Step 3 waits for the acks so that 4 can never be durable while the events
are not. Only the round trip is shared: the outcome of every command is what handling
them one at a time gives (``tests/integration/test_event_topics.py`` folds the topic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from faust.types import EventT, TableT, TopicT

from pipeline.common.deadletter import DeadLetters
from pipeline.domain.handling import (
    AggregateSpec,
    CommandResult,
    Outcome,
    Snapshot,
    handle,
    snapshot_from_dict,
    snapshot_to_dict,
)
from pipeline.domain.results import RejectionReason
from pipeline.write import faust_fixes
from pipeline.write.aggregates import Aggregate
from pipeline.write.codecs import (
    MalformedMessage,
    Reservation,
    decode_command,
    encode_reservation,
    encode_result,
)
from pipeline.write.routing import ClaimKeys
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)


@dataclass(kw_only=True, eq=False)
class CommandProcessor:
    """Runs commands of one aggregate type against its table."""

    aggregate: Aggregate
    table: TableT
    events: TopicT
    results: TopicT
    reservations: TopicT | None
    dead_letters: DeadLetters
    codec: AvroCodec
    producer: str
    window: int
    claim_keys: ClaimKeys

    @property
    def spec(self) -> AggregateSpec:
        return self.aggregate.spec

    async def process_batch(self, events: Sequence[EventT]) -> None:
        """Handle ``events`` (records of ``<aggregate>.commands``, offset order within
        each partition) and send everything they cause; the caller acks them after.

        Raises what the producer raises when an event is not acknowledged (the agent
        stops, nothing is acked, and the batch is delivered again).
        """
        snapshots: dict[str, tuple[EventT, Snapshot]] = {}
        handled: list[tuple[Any, Any, Outcome]] = []
        acks = []
        for event in events:
            try:
                command = decode_command(self.aggregate, event.message.value)
            except MalformedMessage as exc:
                await self.dead_letters.send(event.message, str(exc))
                await self._answer_malformed(event, str(exc))
                continue
            key = command.aggregate_id
            if key in snapshots:
                snapshot = snapshots[key][1]
            else:
                with faust_fixes.current_event(event):
                    stored = self.table.get(key)
                snapshot = snapshot_from_dict(self.spec, stored) if stored else Snapshot(state=None)
            outcome = handle(
                self.spec, snapshot, command, producer=self.producer, window=self.window
            )
            for envelope in outcome.envelopes:
                value = self.codec.encode(envelope)
                acks.append(await self.events.send(key=key.encode(), value=value))
            if not outcome.duplicate:
                snapshots[key] = (event, outcome.snapshot)
            handled.append((command, snapshot.state, outcome))
        for ack in acks:
            await ack
        for key, (event, snapshot) in snapshots.items():
            with faust_fixes.current_event(event):  # the table's partition is the record's
                self.table[key] = snapshot_to_dict(self.spec, snapshot)
        for command, before, outcome in handled:
            if outcome.duplicate:
                await self.reply(replace(outcome.result, duplicate=True))
                continue
            await self._release(command, before, outcome)
            await self.reply(outcome.result)

    async def reply(self, result: CommandResult) -> None:
        """Send ``result`` keyed by its aggregate id.

        Keyed like the command, the result lands on the same partition number, and under
        exactly_once faust-streaming 0.15 puts a send into the transaction of its
        *destination* partition (``{app_id}-{group}-{partition}``): only outputs
        co-partitioned with the input commit atomically with the input's offset.
        """
        key = result.aggregate_id or result.command_id
        await self.results.send(key=key.encode(), value=encode_result(result))

    async def _release(self, command: Any, before: Any, outcome: Any) -> None:
        keys, aggregate = self.claim_keys, self.aggregate
        held_before = keys.held(aggregate, before)
        if outcome.result.status == "rejected":
            release = set(keys.for_command(aggregate, command)) - held_before
        else:
            release = held_before - keys.held(aggregate, outcome.snapshot.state)
        owner = command.aggregate_id
        if self.reservations is None:
            return
        for claim in sorted(release):
            message = Reservation(op="release", owner=owner, claim=claim)
            await self.reservations.send(key=claim.encode(), value=encode_reservation(message))

    async def _answer_malformed(self, event: EventT, reason: str) -> None:
        """A malformed command still gets a result when its id can be read, so a waiting
        API request fails fast instead of timing out."""
        raw = _loose_json(event.message.value)
        command_id, aggregate_id = raw.get("command_id"), raw.get("aggregate_id")
        actor = raw.get("actor")  # who may read this result (GET /api/commands/{id})
        if not isinstance(command_id, str):
            return
        await self.reply(
            CommandResult(
                command_id=command_id,
                status="rejected",
                aggregate_type=self.spec.aggregate_type,
                aggregate_id=str(aggregate_id or ""),
                version=0,
                reason=RejectionReason.INVALID.value,
                message=reason[:1000],
                actor=actor if isinstance(actor, str) else None,
            )
        )


def _loose_json(payload: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(payload or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
