"""The frame of an aggregate whose ``decide`` and ``evolve`` are one rule per command and
event class, dispatched with :func:`functools.singledispatch` (users, partners).

The aggregate keeps its rules: ``precondition(command, state)`` (a rejection before any
rule runs), ``rule(command, state)`` (the events) and ``transition(event, state, at)``
(the next state); :func:`decide` and :func:`evolve` run them the same way for each.

All of it is pure and deterministic: no clock, no randomness, no I/O. Time comes from the
command (``issued_at``) or the event envelope (``occurred_at``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.results import Rejection, RejectionReason

__all__ = [
    "Refused",
    "absent",
    "decide",
    "evolve",
    "existing",
    "no_decide_rule",
    "no_evolve_rule",
    "precondition",
]

S = TypeVar("S")


class Refused(Exception):
    """Raised by a rule (or a lookup helper it calls) to end it with ``rejection``, when
    the reason is not INVALID (that is :class:`~pipeline.domain.errors.InvalidValue`)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def precondition(
    noun: str, create: type, refusal: Callable[[S], Rejection | None]
) -> Callable[[Any, S | None], Rejection | None]:
    """The precondition of an aggregate that one ``create`` command starts: the create only
    on no state (else ALREADY_EXISTS, "<noun> already exists"), any other command only on an
    existing state (else NOT_FOUND, "<noun> not found") that ``refusal`` lets through."""

    def check(command: Any, state: S | None) -> Rejection | None:
        if isinstance(command, create):
            if state is None:
                return None
            return Rejection(RejectionReason.ALREADY_EXISTS, f"{noun} already exists")
        if state is None:
            return Rejection(RejectionReason.NOT_FOUND, f"{noun} not found")
        return refusal(state)

    return check


def decide(
    precondition: Callable[[Any, S | None], Rejection | None],
    rule: Callable[[Any, S | None], list[Any] | Rejection],
    state: S | None,
    command: Any,
) -> list[Any] | Rejection:
    """``precondition``'s rejection if any, else ``rule``'s events or rejection; an
    ``InvalidValue`` from the rule becomes an INVALID rejection naming its field, a
    :class:`Refused` its rejection."""
    rejection = precondition(command, state)
    if rejection is not None:
        return rejection
    try:
        return rule(command, state)
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)
    except Refused as exc:
        return exc.rejection


def evolve(
    transition: Callable[[Any, S | None, datetime], S],
    state: S | None,
    event: Any,
    occurred_at: datetime,
) -> S:
    """``transition(event, state, at)`` with ``at`` = ``occurred_at`` in UTC. Raises
    InvalidTransition for a naive ``occurred_at``."""
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        raise InvalidTransition(f"{type(event).__name__}: occurred_at must be tz-aware")
    return transition(event, state, occurred_at.astimezone(UTC))


def absent(state: Any, event: Any, noun: str, id_field: str) -> None:
    """Raises InvalidTransition when ``event``, which creates a ``noun``, finds one already
    (``state``, its id in ``id_field``)."""
    if state is not None:
        existing_id = getattr(state, id_field)
        raise InvalidTransition(f"{type(event).__name__} for existing {noun} {existing_id}")


def existing(state: S | None, event: Any, created: str) -> S:
    """``state``; raises InvalidTransition when there is none yet (``event`` came before
    the ``created`` event)."""
    if state is None:
        raise InvalidTransition(f"{type(event).__name__} before {created}")
    return state


def no_decide_rule(command: Any, state: Any) -> NoReturn:
    """The default of a ``singledispatch`` rule: a command class without a rule is a bug."""
    raise TypeError(f"no decide rule for {type(command).__name__}")


def no_evolve_rule(event: Any, state: Any, at: datetime) -> NoReturn:
    """The default of a ``singledispatch`` transition. Raises InvalidTransition."""
    raise InvalidTransition(f"no evolve rule for {type(event).__name__}")
