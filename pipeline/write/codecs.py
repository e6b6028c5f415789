"""Wire formats of the write side's internal topics: commands, reservations, results (JSON).

Events are Avro (``schemas/``); commands and results are internal messages between the
API and the agents and never stored forever, so JSON validated by pydantic is enough.
One mapper per boundary: everything that turns these messages into bytes is here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from pipeline.domain.handling import CommandResult
from pipeline.write.aggregates import Aggregate, aggregate_of

T = TypeVar("T")


class MalformedMessage(ValueError):
    """A record on an internal topic could not be parsed; it goes to the dead-letter topic."""


def encode_command(command: Any) -> bytes:
    return aggregate_of(command).commands.dump_json(command)


def decode_command(aggregate: Aggregate, payload: bytes) -> Any:
    """bytes -> one of ``aggregate``'s command dataclasses.

    Raises:
        MalformedMessage: with pydantic's reasons.
    """
    return _validated(
        aggregate.commands, payload, f"a valid {aggregate.spec.aggregate_type} command"
    )


def command_dict(command: Any) -> dict[str, Any]:
    return aggregate_of(command).commands.dump_python(command, mode="json")


def command_from_dict(aggregate: Aggregate, data: dict[str, Any]) -> Any:
    return aggregate.commands.validate_python(data)


def encode_result(result: CommandResult) -> bytes:
    return orjson.dumps(result.to_dict())


def decode_result(payload: bytes) -> CommandResult:
    try:
        return CommandResult.from_dict(orjson.loads(payload))
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedMessage(f"not a command result: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """A message on ``users.reservations``, keyed by ``claims[index]`` (or ``claim``).

    reserve: hold ``claims[index]`` for ``owner`` then pass the command on (to the next
    claim, or to the aggregate's command topic). ``taken`` lists the claims this chain
    newly reserved, the only ones a failure may release.
    release: free ``claim`` if ``owner`` still holds it.
    """

    op: Literal["reserve", "release"]
    owner: str
    claims: tuple[str, ...] = ()
    index: int = 0
    taken: tuple[str, ...] = ()
    claim: str | None = None
    command: dict[str, Any] | None = field(default=None)

    @property
    def key(self) -> str:
        return self.claims[self.index] if self.op == "reserve" else str(self.claim)


_RESERVATION = TypeAdapter(Reservation)


def encode_reservation(message: Reservation) -> bytes:
    return _RESERVATION.dump_json(message)


def decode_reservation(payload: bytes) -> Reservation:
    return _validated(_RESERVATION, payload, "a reservation")


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterMessage:
    """A message to the admin roster (``pipeline.domain.users.roster``) on
    ``users.reservations``, keyed ``ROSTER_KEY``.

    remove: approve ``command`` (a users command, as JSON), which would take admin rights
    from ``user_id``, or refuse it. seat: ``user_id`` at aggregate ``version`` is (not) an
    active admin; ``settles`` names the approved removal it follows from.
    """

    op: Literal["remove", "seat"]
    user_id: str
    command_id: str | None = None
    command: dict[str, Any] | None = None
    version: int = 0
    active_admin: bool = False
    settles: str | None = None


_ROSTER = TypeAdapter(RosterMessage)


def encode_roster(message: RosterMessage) -> bytes:
    return _ROSTER.dump_json(message)


def decode_roster(payload: bytes) -> RosterMessage:
    return _validated(_ROSTER, payload, "a roster message")


def _validated(adapter: TypeAdapter[T], payload: bytes, what: str) -> T:
    """``payload`` as ``adapter``'s type. Raises MalformedMessage("not <what>: <pydantic's
    reasons>")."""
    try:
        return adapter.validate_json(payload)
    except ValidationError as exc:
        raise MalformedMessage(f"not {what}: {exc.errors(include_url=False)}") from exc
