"""The command agent: load state from the table, ``handle`` (pure), emit, reply; a batch
of commands at a time, one wait for the brokers' acks per batch.

Per batch, in this order (the order is what makes a crash at any point harmless):

1. Decode each command; a malformed record is dead-lettered (and answered if it has a
   command id).
2. ``handle(snapshot, command)`` for each, in offset order, a later command of the same
   aggregate seeing the snapshot an earlier one left: a command id seen before returns
   its original result and emits nothing; otherwise decide + evolve give the envelopes
   and the new snapshot.
3. Produce every envelope to ``<aggregate>.events``, the releases of uniqueness claims
   the commands no longer need to ``<aggregate>.reservations`` and the results to
   ``command.results``, then wait once for all their acks.
4. Store each touched aggregate's newest snapshot in the table (changelog-backed); the
   caller then acks the batch's records.

A crash at any point replays the batch from the last committed offset (Faust flushes
its producer, the tables' changelogs included, before it commits offsets, and commits
only acked records). If 4 did not reach the changelog, the replay yields byte-identical
envelopes (event ids, versions and times are deterministic) that idempotent projections
ignore, and the same releases and results again (a release frees only its owner's claim;
a waiting request takes the first result); if it did, step 2 answers with the stored
result, marked ``duplicate``. Step 3 waits for the acks so that 4 can never be durable
while the events are not. Only the round trip is shared: the outcome of every command is
what handling them one at a time gives (``tests/integration/test_event_topics.py`` folds
the topic).

The records of step 3 go through librdkafka (``connectors.kafka.AsyncProducer``), not
Faust's producer: a Faust send costs a future, a buffer hop and an aiokafka batch append
on the event loop per record, three per command, and was the largest share of this
agent's time under load (py-spy, issue 22). Offsets still commit through Faust, only
after the batch returned, that is after every ack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from faust.types import EventT, TableT

from connectors.kafka import AsyncProducer, Deliveries
from pipeline.common import topics
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
    kafka: AsyncProducer
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

        Raises KafkaDeliveryError when a record is not acknowledged (the agent stops,
        nothing is acked, and the batch is delivered again).
        """
        snapshots: dict[str, tuple[EventT, Snapshot]] = {}
        out = self.kafka.deliveries()
        for event in events:
            try:
                command = decode_command(self.aggregate, event.message.value)
            except MalformedMessage as exc:
                await self.dead_letters.send(event.message, str(exc))
                self._answer_malformed(out, event, str(exc))
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
            if outcome.duplicate:
                self.reply(out, replace(outcome.result, duplicate=True))
                continue
            topic, id_bytes = self.spec.events_topic, key.encode()
            for envelope in outcome.envelopes:
                out.produce(topic, self.codec.encode(envelope), key=id_bytes)
            self._release(out, command, snapshot.state, outcome)
            self.reply(out, outcome.result)
            snapshots[key] = (event, outcome.snapshot)
        await out.wait()
        for key, (event, snapshot) in snapshots.items():
            with faust_fixes.current_event(event):  # the table's partition is the record's
                self.table[key] = snapshot_to_dict(self.spec, snapshot)

    def reply(self, out: Deliveries, result: CommandResult) -> None:
        """Produce ``result`` into ``out``, keyed by its aggregate id (the command's
        partition number: the results of one aggregate stay in order)."""
        key = result.aggregate_id or result.command_id
        out.produce(topics.COMMAND_RESULTS, encode_result(result), key=key.encode())

    def _release(self, out: Deliveries, command: Any, before: Any, outcome: Outcome) -> None:
        topic = self.spec.reservations_topic
        if topic is None:
            return
        keys, aggregate = self.claim_keys, self.aggregate
        held_before = keys.held(aggregate, before)
        if outcome.result.status == "rejected":
            release = set(keys.for_command(aggregate, command)) - held_before
        else:
            release = held_before - keys.held(aggregate, outcome.snapshot.state)
        owner = command.aggregate_id
        for claim in sorted(release):
            message = Reservation(op="release", owner=owner, claim=claim)
            out.produce(topic, encode_reservation(message), key=claim.encode())

    def _answer_malformed(self, out: Deliveries, event: EventT, reason: str) -> None:
        """A malformed command still gets a result when its id can be read, so a waiting
        API request fails fast instead of timing out."""
        raw = _loose_json(event.message.value)
        command_id, aggregate_id = raw.get("command_id"), raw.get("aggregate_id")
        actor = raw.get("actor")  # who may read this result (GET /api/commands/{id})
        if not isinstance(command_id, str):
            return
        self.reply(
            out,
            CommandResult(
                command_id=command_id,
                status="rejected",
                aggregate_type=self.spec.aggregate_type,
                aggregate_id=str(aggregate_id or ""),
                version=0,
                reason=RejectionReason.INVALID.value,
                message=reason[:1000],
                actor=actor if isinstance(actor, str) else None,
            ),
        )


def _loose_json(payload: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(payload or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
