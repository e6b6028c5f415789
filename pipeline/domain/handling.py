"""Generic, pure command handling: idempotency, optimistic concurrency, decide, envelopes,
state folding.

The Faust agent keeps one :class:`Snapshot` per aggregate id in a table, calls
:func:`handle` for each command, stores ``Outcome.snapshot``, produces ``Outcome.envelopes``
and replies with ``Outcome.result``. Everything here is deterministic: the same snapshot and
command always give equal output, so a command replayed after a crash yields byte-identical
events (same ids, same timestamps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Field

from pipeline.domain import event_data
from pipeline.domain.errors import InvalidValue
from pipeline.domain.results import Rejection, RejectionReason
from schemas.envelope import SYSTEM_ACTOR, Envelope, event_id_for

__all__ = [
    "AggregateSpec",
    "CommandResult",
    "Outcome",
    "Snapshot",
    "handle",
    "snapshot_from_dict",
    "snapshot_to_dict",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """The answer to one command.

    version: aggregate version after the command (unchanged if rejected or a no-op).
    event_ids: ids of the events emitted, in order. reason/message/field: set when rejected
    (``reason`` is a ``RejectionReason`` value).
    """

    command_id: str
    status: Literal["accepted", "rejected"]
    aggregate_type: str
    aggregate_id: str
    version: int
    event_ids: tuple[str, ...] = ()
    reason: str | None = None
    message: str | None = None
    field: str | None = None
    duplicate: bool = False
    """True on a repeated answer to a command id seen before (the original result)."""
    actor: str | None = None
    """The command's ``actor`` (user id of whoever issued it; None for a tool's command).
    ``GET /api/commands/{id}`` shows a result to this user and to admins only."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``event_ids`` as a list)."""
        return {
            "command_id": self.command_id,
            "status": self.status,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "event_ids": list(self.event_ids),
            "reason": self.reason,
            "message": self.message,
            "field": self.field,
            "duplicate": self.duplicate,
            "actor": self.actor,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CommandResult:
        """Inverse of :meth:`to_dict`; optional keys may be absent."""
        return cls(
            command_id=d["command_id"],
            status=d["status"],
            aggregate_type=d["aggregate_type"],
            aggregate_id=d["aggregate_id"],
            version=int(d["version"]),
            event_ids=tuple(d.get("event_ids") or ()),
            reason=d.get("reason"),
            message=d.get("message"),
            field=d.get("field"),
            duplicate=bool(d.get("duplicate", False)),
            actor=d.get("actor"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What the table stores per aggregate id.

    state: the aggregate state (e.g. ``User``) or None if it does not exist yet.
    version: number of events applied so far (0 = none).
    recent: ``(command_id, result)`` pairs, oldest first, bounded by the handler's window;
        the idempotency memory.
    """

    state: Any | None
    version: int = 0
    recent: tuple[tuple[str, CommandResult], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateSpec:
    """One aggregate type, declared once: the pure functions :func:`handle` calls, its
    commands and events, its uniqueness claims, and the names of its topics and tables.

    aggregate_type: singular (``"user"``): envelopes, Avro namespaces
    (``schemas/avro/<aggregate_type>/``), claims tables. topic: plural (``"users"``), the
    prefix of its topics. decide(state, command) -> events | Rejection;
    evolve(state, event, occurred_at) -> state; state_to_dict/state_from_dict: JSON-safe
    table form. events/commands: the dataclasses, each event a
    :class:`~pipeline.domain.event.DomainEvent` (``event_type``, ``schema_version``), each
    command a :class:`~pipeline.domain.command.Command` with a ``type`` literal (pydantic
    discriminates on it). claims_for(command) / claims_held(state): the unique values a
    command reserves and a state holds (``pipeline.write.routing``); None = no
    uniqueness, so no reservations topic.

    Derived, so one declaration is enough (``pipeline.domain.catalog`` lists them):
    ``<topic>.commands``, ``.events`` (kept forever), ``.dlq``, ``.reservations`` (with
    claims); Faust tables ``<topic>-state`` and ``<aggregate_type>-claims``.
    """

    aggregate_type: str
    topic: str
    decide: Callable[[Any, Any], list[Any] | Rejection]
    evolve: Callable[[Any, Any, datetime], Any]
    state_to_dict: Callable[[Any], dict[str, Any]]
    state_from_dict: Callable[[dict[str, Any]], Any]
    events: tuple[type, ...]
    commands: tuple[type, ...]
    claims_for: Callable[[Any], tuple[str, ...]] | None = None
    claims_held: Callable[[Any], frozenset[str]] | None = None
    event_types: dict[str, type] = field(init=False, repr=False, compare=False)
    command_types: dict[str, type] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: the derived maps are set once, here
        object.__setattr__(self, "event_types", {e.event_type: e for e in self.events})
        object.__setattr__(self, "command_types", {c.__name__: c for c in self.commands})

    @classmethod
    def declare(
        cls,
        aggregate_type: str,
        topic: str,
        rules: ModuleType,
        state: ModuleType,
        events: Any,
        commands: Any,
    ) -> AggregateSpec:
        """The declaration of an aggregate package laid out the one way (README, "Add an
        aggregate"): ``rules`` is its ``aggregate`` module (``decide``, ``evolve`` and, for
        uniqueness, ``claims_for``/``claims_held``), ``state`` its ``state`` module
        (``state_to_dict``/``state_from_dict``), ``events`` its union of event classes,
        ``commands`` its ``Annotated`` union of commands. Raises ``AttributeError`` for a
        module without the functions named."""
        return cls(
            aggregate_type=aggregate_type,
            topic=topic,
            decide=rules.decide,
            evolve=rules.evolve,
            state_to_dict=state.state_to_dict,
            state_from_dict=state.state_from_dict,
            events=get_args(events),
            commands=get_args(get_args(commands)[0]),
            claims_for=getattr(rules, "claims_for", None),
            claims_held=getattr(rules, "claims_held", None),
        )

    def to_data(self, event: Any) -> dict[str, Any]:
        """The event's ``data`` dict (``pipeline.domain.event_data``)."""
        return event_data.to_data(event)

    def from_data(self, event_type: str, data: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_data`. Raises UnknownEventType or InvalidValue."""
        return event_data.from_data(self.event_types, event_type, data)

    @property
    def command_union(self) -> Any:
        """The commands as one pydantic discriminated union (on ``type``)."""
        return Annotated[Union[self.commands], Field(discriminator="type")]  # noqa: UP007

    @property
    def commands_topic(self) -> str:
        return f"{self.topic}.commands"

    @property
    def events_topic(self) -> str:
        """The event store of this aggregate type: key = aggregate id, kept forever."""
        return f"{self.topic}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def reservations_topic(self) -> str | None:
        """Keyed by the unique value a command reserves; None without claims."""
        return f"{self.topic}.reservations" if self.claims_for is not None else None

    @property
    def state_table(self) -> str:
        return f"{self.topic}-state"

    @property
    def claims_table(self) -> str | None:
        """Faust table of claim -> owner, partitioned like the reservations topic."""
        return f"{self.aggregate_type}-claims" if self.claims_for is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Result of :func:`handle`.

    snapshot: the snapshot to store (the same object when ``duplicate``).
    result: the command's result (the ORIGINAL result when ``duplicate``).
    envelopes: events to produce, in order; [] if rejected, no-op or duplicate.
    duplicate: True when ``command_id`` was already in ``snapshot.recent``.
    """

    snapshot: Snapshot
    result: CommandResult
    envelopes: list[Envelope]
    duplicate: bool


def handle(
    spec: AggregateSpec, snapshot: Snapshot, command: Any, *, producer: str, window: int
) -> Outcome:
    """Handle one command against ``snapshot``.

    ``command`` needs ``command_id``, ``aggregate_id``, ``issued_at`` (tz-aware),
    ``expected_version``, ``correlation_id`` and ``actor`` attributes (``actor`` goes on
    the envelopes and the result). ``producer`` is stamped on envelopes; ``window``
    (>= 1) bounds how many recent command ids are remembered.

    Order: duplicate command_id -> original result; expected_version mismatch -> CONFLICT;
    naive ``issued_at`` -> INVALID; decide; fold events into the state. Accepted and rejected
    results are both remembered. Raises ``InvalidValue("window", ...)`` if ``window`` < 1, and
    propagates ``InvalidTransition`` from ``evolve`` (a bug: decide emitted an unfoldable event).
    """
    if window < 1:
        raise InvalidValue("window", f"must be >= 1, got {window}")
    for seen_id, seen_result in snapshot.recent:
        if seen_id == command.command_id:
            return Outcome(snapshot=snapshot, result=seen_result, envelopes=[], duplicate=True)

    decision = _precheck(snapshot, command)
    if decision is None:
        decision = spec.decide(snapshot.state, command)
    if isinstance(decision, Rejection):
        result = CommandResult(
            command_id=command.command_id,
            status="rejected",
            aggregate_type=spec.aggregate_type,
            aggregate_id=command.aggregate_id,
            version=snapshot.version,
            reason=decision.reason.value,
            message=decision.message,
            field=decision.field,
            actor=command.actor,
        )
        return _remember(snapshot, snapshot.state, snapshot.version, result, [], window)

    occurred_at = command.issued_at.astimezone(UTC)
    state = snapshot.state
    envelopes: list[Envelope] = []
    for index, event in enumerate(decision):
        version = snapshot.version + index + 1
        envelope = Envelope(
            event_id=event_id_for(command.command_id, version),
            event_type=event.event_type,
            schema_version=event.schema_version,
            aggregate_type=spec.aggregate_type,
            aggregate_id=command.aggregate_id,
            aggregate_version=version,
            occurred_at=occurred_at,
            producer=producer,
            correlation_id=command.correlation_id or command.command_id,
            causation_id=command.command_id,
            actor=command.actor or SYSTEM_ACTOR,
            data=spec.to_data(event),
        )
        state = spec.evolve(state, event, occurred_at)
        envelopes.append(envelope)
    version = snapshot.version + len(envelopes)
    result = CommandResult(
        command_id=command.command_id,
        status="accepted",
        aggregate_type=spec.aggregate_type,
        aggregate_id=command.aggregate_id,
        version=version,
        event_ids=tuple(e.event_id for e in envelopes),
        actor=command.actor,
    )
    return _remember(snapshot, state, version, result, envelopes, window)


def _precheck(snapshot: Snapshot, command: Any) -> Rejection | None:
    expected = command.expected_version
    if expected is not None and expected != snapshot.version:
        return Rejection(
            RejectionReason.CONFLICT,
            f"expected version {expected}, but the aggregate is at version {snapshot.version}",
        )
    issued_at = command.issued_at
    if not isinstance(issued_at, datetime) or issued_at.tzinfo is None:
        return Rejection(RejectionReason.INVALID, "must be a timezone-aware datetime", "issued_at")
    return None


def _remember(
    snapshot: Snapshot,
    state: Any,
    version: int,
    result: CommandResult,
    envelopes: list[Envelope],
    window: int,
) -> Outcome:
    recent = (*snapshot.recent, (result.command_id, result))[-window:]
    new = Snapshot(state=state, version=version, recent=recent)
    return Outcome(snapshot=new, result=result, envelopes=envelopes, duplicate=False)


def snapshot_to_dict(spec: AggregateSpec, snapshot: Snapshot) -> dict[str, Any]:
    """JSON-safe dict of ``snapshot`` for the table: ``{"state": dict | None, "version": int,
    "recent": [[command_id, result_dict], ...]}``.
    """
    return {
        "state": None if snapshot.state is None else spec.state_to_dict(snapshot.state),
        "version": snapshot.version,
        "recent": [[command_id, result.to_dict()] for command_id, result in snapshot.recent],
    }


def snapshot_from_dict(spec: AggregateSpec, d: dict[str, Any]) -> Snapshot:
    """Inverse of :func:`snapshot_to_dict`."""
    state = d.get("state")
    return Snapshot(
        state=None if state is None else spec.state_from_dict(state),
        version=int(d.get("version", 0)),
        recent=tuple(
            (command_id, CommandResult.from_dict(result))
            for command_id, result in d.get("recent", ())
        ),
    )
