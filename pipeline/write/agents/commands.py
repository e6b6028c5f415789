"""The command agent: load state from the table, ``handle`` (pure), emit, reply; a batch
of commands at a time, one wait for the brokers' acks per batch, overlapped with the next.

Per batch, in this order (the order is what makes a crash at any point harmless):

1. Decode each command; a malformed record is dead-lettered (and answered if it has a
   command id).
2. ``handle(snapshot, command)`` for each, in offset order, a later command of the same
   aggregate seeing the snapshot an earlier one left (or an earlier batch not stored
   yet): a command id seen before returns its original result and emits nothing;
   otherwise decide + evolve give the envelopes and the new snapshot.
3. Produce every envelope to ``<aggregate>.events``, the releases of uniqueness claims
   the commands no longer need to ``<aggregate>.reservations`` and the results to
   ``command.results``.
4. The tail, while the agent takes and decides the next batch: once the previous batch's
   tail is done, wait once for all of 3's acks, then store each touched aggregate's
   newest snapshot in the table (changelog-backed); then the agent acks the records.

A crash at any point replays from the last committed offset (Faust flushes its
producer, the tables' changelogs included, before it commits offsets, and commits only
acked records, in offset order). If 4 did not reach the changelog, the replay yields
byte-identical envelopes (event ids, versions and times are deterministic) that
idempotent projections ignore, and the same releases and results again (a release frees
only its owner's claim; a waiting request takes the first result); if it did, step 2
answers with the stored result, marked ``duplicate``. 4 waits for the acks so that a
snapshot can never be durable while its events are not. Only the round trip is shared:
the outcome of every command is what handling them one at a time gives
(``tests/integration/test_event_topics.py`` folds the topic).

Measured (``bench/commands.py``, kafka phase, CPU per command by role): the librdkafka
producer, the decoded-snapshot cache and the overlapped tail together took the commands
process from 890-990 to 550-660 µs per UpdateUser, and the whole stack (broker and
projections included: bigger batches, fewer requests) from 2,985-3,258 to 1,883-2,353.

The records of step 3 go through librdkafka (``connectors.kafka.AsyncProducer``), not
Faust's producer: a Faust send costs a future, a buffer hop and an aiokafka batch append
on the event loop per record, three per command (py-spy, issue 22). Offsets still commit
through Faust, only after the batch's tail, that is after every ack.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from cachetools import LRUCache
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
from pipeline.write.aggregates import Aggregate, aggregate_for_command
from pipeline.write.codecs import (
    MalformedMessage,
    Reservation,
    RosterMessage,
    decode_command,
    encode_reservation,
    encode_result,
    encode_roster,
)
from pipeline.write.routing import ADMITTED, ClaimKeys, admission, header
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)


@dataclass(kw_only=True, eq=False)
class CommandProcessor:
    """Runs commands of one aggregate type against its table: aggregate id -> the JSON
    of ``snapshot_to_dict`` (bytes; the table is raw, the JSON is orjson's)."""

    aggregate: Aggregate
    table: TableT
    kafka: AsyncProducer
    dead_letters: DeadLetters
    codec: AvroCodec
    producer: str
    window: int
    claim_keys: ClaimKeys
    decoded_snapshots: int = 1_000
    """How many decoded snapshots ``_load`` keeps (LRU; each up to ``window`` results)."""

    def __post_init__(self) -> None:
        self._decoded: LRUCache[str, tuple[bytes, Snapshot]] = LRUCache(self.decoded_snapshots)
        # decided, produced, not stored yet: the newest snapshot per aggregate id
        self._unwritten: dict[str, Snapshot] = {}
        self._last_store: asyncio.Future[None] | None = None
        # a store that failed (not cancelled): nothing more is decided until a restart
        self._failure: BaseException | None = None

    @property
    def spec(self) -> AggregateSpec:
        return self.aggregate.spec

    async def process_batch(self, events: Sequence[EventT]) -> Awaitable[None]:
        """Decide ``events`` (records of ``<aggregate>.commands``, offset order within
        each partition) and produce everything they cause; returns the batch's tail,
        which waits for the acks and then stores the snapshots. The caller acks the
        records after the tail (``app.batch_agent`` runs it beside the next batch, whose
        commands see these snapshots before they are stored).

        The tail raises KafkaDeliveryError when a record is not acknowledged: nothing
        of it or of a later batch is acked, and this processor raises it again for every
        batch from then on, so the worker must be restarted (it then replays from the
        committed offsets). A cancelled tail (the agent stopped or restarted on a
        rebalance) only forgets the unwritten snapshots: the records are delivered again.
        """
        if self._failure is not None:
            # events of a batch decided before may be out while its state is not stored:
            # deciding more from the table could give a second event the same version
            raise self._failure
        snapshots: dict[str, tuple[EventT, Snapshot]] = {}
        out = self.kafka.deliveries()
        for event in events:
            try:
                command = decode_command(self.aggregate, event.message.value)
            except MalformedMessage as exc:
                await self._not_own(out, event, exc, snapshots)
                continue
            key = command.aggregate_id
            # let through by the aggregate that admits this one's commands, or (a users
            # command) by the admin roster
            admitted = header(event.message.headers, ADMITTED) is not None
            admitter = self.aggregate.admitted_by(command)
            if admitter is not None and not admitted:
                # produced straight to this topic: through its admission first
                topic, admitter_key, value = admission(admitter, event.message.value)
                out.produce(topic, value, key=admitter_key)
                continue
            snapshot = snapshots[key][1] if key in snapshots else self._load(key, event)
            settles = command.command_id if admitted and self.aggregate.roster else None
            if not admitted and self._needs_roster(snapshot, command):
                self._ask_roster(out, event, command)
                continue
            outcome = handle(
                self.spec, snapshot, command, producer=self.producer, window=self.window
            )
            _log_decided(command, outcome)
            if outcome.duplicate:
                self.reply(out, replace(outcome.result, duplicate=True))
                if settles:
                    self._seat(out, key, outcome.snapshot, settles=settles)
                continue
            topic, id_bytes = self.spec.events_topic, key.encode()
            for envelope in outcome.envelopes:
                out.produce(topic, self.codec.encode(envelope), key=id_bytes)
            self._release(out, command, snapshot.state, outcome)
            self.reply(out, outcome.result)
            if settles or self._seats(snapshot.state, outcome):
                self._seat(out, key, outcome.snapshot, settles=settles)
            snapshots[key] = (event, outcome.snapshot)
        for key, (_, snapshot) in snapshots.items():
            self._unwritten[key] = snapshot
        store = asyncio.ensure_future(self._store(self._last_store, out, snapshots))
        self._last_store = store
        return store

    async def _store(
        self,
        previous: asyncio.Future[None] | None,
        out: Deliveries,
        snapshots: dict[str, tuple[EventT, Snapshot]],
    ) -> None:
        """Once the previous batch's snapshots are stored and ``out`` is acknowledged,
        write ``snapshots`` to the table (so a key's snapshots reach the table in the
        order they were decided). Cancelled or failed, here or in an earlier batch, it
        forgets every unwritten snapshot: those records are not acked, they are
        delivered again and decided from the table."""
        try:
            if previous is not None:
                await previous
            await out.wait()
        except BaseException as exc:
            self._unwritten.clear()
            if not isinstance(exc, asyncio.CancelledError) and self._failure is None:
                self._failure = exc
            raise
        for key, (event, snapshot) in snapshots.items():
            stored = orjson.dumps(snapshot_to_dict(self.spec, snapshot))
            with faust_fixes.current_event(event):  # the table's partition is the record's
                self.table[key] = stored
            self._decoded[key] = (stored, snapshot)
            if self._unwritten.get(key) is snapshot:  # a later batch may have a newer one
                del self._unwritten[key]

    def _needs_roster(self, snapshot: Snapshot, command: Any) -> bool:
        """Would ``command`` take an active admin's rights (and is it not answered from
        the idempotency memory)? Then the admin roster decides first."""
        rules = self.aggregate.roster
        if rules is None or not rules.removes_admin(snapshot.state, command):
            return False
        return all(seen != command.command_id for seen, _ in snapshot.recent)

    def _ask_roster(self, out: Deliveries, event: EventT, command: Any) -> None:
        request = RosterMessage(
            op="remove",
            user_id=command.aggregate_id,
            command_id=command.command_id,
            command=orjson.loads(event.message.value),
        )
        self._to_roster(out, request)

    def _seats(self, before: Any, outcome: Outcome) -> bool:
        """Does the roster hear of this accepted command? When its user is an active admin
        before or after it (a grant, a reactivation; any command of an admin, so an
        install older than the roster fills it as its admins act)."""
        rules = self.aggregate.roster
        if rules is None or outcome.result.status != "accepted":
            return False
        return rules.is_active_admin(before) or rules.is_active_admin(outcome.snapshot.state)

    def _seat(
        self, out: Deliveries, user_id: str, snapshot: Snapshot, *, settles: str | None
    ) -> None:
        rules = self.aggregate.roster
        assert rules is not None  # only the roster's aggregate asks or seats
        seat = RosterMessage(
            op="seat",
            user_id=user_id,
            version=snapshot.version,
            active_admin=rules.is_active_admin(snapshot.state),
            settles=settles,
        )
        self._to_roster(out, seat)

    def _to_roster(self, out: Deliveries, message: RosterMessage) -> None:
        assert self.aggregate.roster is not None and self.spec.reservations_topic is not None
        key = self.aggregate.roster.ROSTER_KEY.encode()
        out.produce(self.spec.reservations_topic, encode_roster(message), key=key)

    async def _not_own(
        self,
        out: Deliveries,
        event: EventT,
        error: MalformedMessage,
        snapshots: dict[str, tuple[EventT, Snapshot]],
    ) -> None:
        """A record that is not one of this aggregate's commands: another aggregate's
        command for this one to admit (:meth:`_admit`), else a malformed record,
        dead-lettered and answered."""
        try:
            other = self._admission_of(event)
        except MalformedMessage as exc:  # it is one, but it does not decode
            error, other = exc, None
        if other is None:
            await self.dead_letters.send(event.message, str(error))
            self._answer_malformed(out, event, str(error))
            return
        self._admit(out, event, *other, snapshots)

    def _admission_of(self, event: EventT) -> tuple[Aggregate, Any] | None:
        """(its aggregate, the command) when ``event`` is a command this aggregate admits
        (``pipeline.domain.admission``); None when it is not one. Raises
        MalformedMessage for one that does not decode."""
        if self.aggregate.admits is None:
            return None
        kind = _loose_json(event.message.value).get("type")
        aggregate = aggregate_for_command(kind) if isinstance(kind, str) else None
        if aggregate is None or aggregate is self.aggregate:
            return None
        return aggregate, decode_command(aggregate, event.message.value)

    def _admit(
        self,
        out: Deliveries,
        event: EventT,
        aggregate: Aggregate,
        command: Any,
        snapshots: dict[str, tuple[EventT, Snapshot]],
    ) -> None:
        """Admit or refuse ``command`` (of ``aggregate``) against the snapshot of the
        aggregate it names as its admitter, as this batch has left it. Admitted, it goes
        on to its own topic marked ``ADMITTED``; refused, its result says why (the
        command itself is never decided, so nothing else answers it)."""
        admits = self.aggregate.admits
        key = aggregate.admitted_by(command)
        if admits is None or key is None:
            refusal = None  # it needs no admission: on to its aggregate
        elif event.message.key != key.encode():
            # keyed by something else (a hand-made record): the admitter's partition
            # holds its state, so the request goes there
            topic, admitter_key, value = admission(key, event.message.value)
            out.produce(topic, value, key=admitter_key)
            return
        else:
            snapshot = snapshots[key][1] if key in snapshots else self._load(key, event)
            refusal = admits(snapshot.state, command)
        if refusal is None:
            out.produce(
                aggregate.spec.commands_topic,
                event.message.value,
                key=command.aggregate_id.encode(),
                headers=[(ADMITTED, b"1")],
            )
            return
        self.reply(
            out,
            CommandResult(
                command_id=command.command_id,
                status="rejected",
                aggregate_type=aggregate.spec.aggregate_type,
                aggregate_id=command.aggregate_id,
                version=0,
                reason=refusal.reason.value,
                message=refusal.message,
                field=refusal.field,
                actor=command.actor,
            ),
        )

    def _load(self, key: str, event: EventT) -> Snapshot:
        """``key``'s snapshot as the table holds it. The last ones decoded are kept with
        the bytes they came from and reused while the table holds those very bytes:
        decoding the idempotency memory (up to ``window`` results) was the largest share
        of a command's time (py-spy, issue 22), and comparing bytes cannot be wrong
        whoever wrote the table last (this process, or another before a rebalance)."""
        unwritten = self._unwritten.get(key)
        if unwritten is not None:
            return unwritten
        with faust_fixes.current_event(event):
            stored = self.table.get(key)
        if not stored:
            return Snapshot(state=None)
        known = self._decoded.get(key)
        if known is not None and known[0] == stored:
            return known[1]
        snapshot = snapshot_from_dict(self.spec, orjson.loads(stored))
        self._decoded[key] = (stored, snapshot)
        return snapshot

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


def _log_decided(command: Any, outcome: Outcome) -> None:
    """One line per command decided (seed 000: every change traceable to its command):
    ids, types and the outcome, never the payload (no e-mail, no password hash)."""
    result = outcome.result
    log.info("command decided", command_id=result.command_id, command_type=command.type,
             aggregate_type=result.aggregate_type, aggregate_id=result.aggregate_id,
             outcome="duplicate" if outcome.duplicate else result.status,
             reason=result.reason, version=result.version, event_ids=list(result.event_ids),
             correlation_id=command.correlation_id or command.command_id)  # fmt: skip


def _loose_json(payload: bytes | None) -> dict[str, Any]:
    try:
        value = orjson.loads(payload or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
