"""The aggregate types the write side runs: each declaration (``AggregateSpec``, listed in
``pipeline.domain.catalog``) with what the write side adds to it, the pydantic adapter of
its commands, the commands that undo a refused reservation, and admission (which user
must let its commands happen, ``pipeline.domain.admission``). The command agent, the
codec and the routing are the same code for every type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import TypeAdapter

from connectors.kafka import TopicSpec
from pipeline.domain import admission
from pipeline.domain.catalog import AGGREGATES as DECLARED
from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity import reactions
from pipeline.domain.results import Rejection
from pipeline.domain.users import roster


@dataclass(frozen=True)
class Aggregate:
    """One aggregate type on the write side: ``spec`` (the declaration), ``commands``
    (validates and serialises its commands, a discriminated union on ``type``) and
    ``compensations`` (commands, of any aggregate, to send when a reservation refuses one
    of this type's commands). ``admitted_by``: the id of the ``admission.ADMITTING_AGGREGATE``
    aggregate that must admit a command first (None: decided at once); ``admits``: on that
    aggregate, its rule (state, command -> None or the Rejection)."""

    spec: AggregateSpec
    commands: TypeAdapter[Any] = field(init=False, repr=False, compare=False)
    compensations: Callable[[Any, str], list[Any]] = lambda _command, _reason: []
    admitted_by: Callable[[Any], str | None] = lambda _command: None
    admits: Callable[[Any, Any], Rejection | None] | None = None
    roster: ModuleType | None = None
    """The admin roster's rules (``pipeline.domain.users.roster``) for the aggregate whose
    commands may take admin rights; None for the others."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "commands", TypeAdapter(self.spec.command_union))

    def __getattr__(self, name: str) -> Any:
        # everything else is the declaration's: topics, tables, aggregate_type
        if name == "spec":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.spec, name)

    def claims_for(self, command: Any) -> tuple[str, ...]:
        claims = self.spec.claims_for
        return () if claims is None else claims(command)

    def claims_held(self, state: Any) -> frozenset[str]:
        held = self.spec.claims_held
        return frozenset() if held is None else held(state)


# A conversion's student or instructor refused for its e-mail undoes the conversion: the
# rule is identity's process manager's (it imports the aggregates, so it is wired here).
# Follows and chirps are admitted by a user (the followee, the author), race-free.
_WIRING: Mapping[str, dict[str, Any]] = {
    "student": {"compensations": reactions.compensations},
    "instructor": {"compensations": reactions.compensations},
    "follow": {"admitted_by": admission.admitting_user},
    "chirp": {"admitted_by": admission.admitting_user},
    admission.ADMITTING_AGGREGATE: {"admits": admission.admit, "roster": roster},
}
AGGREGATES: tuple[Aggregate, ...] = tuple(
    Aggregate(spec, **_WIRING.get(spec.aggregate_type, {})) for spec in DECLARED
)
_BY_TYPE = {a.spec.aggregate_type: a for a in AGGREGATES}
USERS, CHIRPS, FOLLOWS = _BY_TYPE["user"], _BY_TYPE["chirp"], _BY_TYPE["follow"]


def changelog_topics(app_id: str) -> list[TopicSpec]:
    """The changelog topic of every Faust table (``<app id>-<table>-changelog``, Faust's
    naming), compacted, partitioned like their source topics.

    Created with the project's topics, before Faust starts. Left to Faust, a changelog
    made on a cold start was not yet in aiokafka's metadata snapshot when the first
    command wrote its table: faust-streaming 0.15 saw "0 partitions", raised
    PartitionsMismatch and the command agent stayed crashed (``make run`` hung; found by
    tests/e2e/test_make_run.py).
    """
    tables = [a.spec.state_table for a in AGGREGATES]
    tables += [a.spec.claims_table for a in AGGREGATES if a.spec.claims_table]
    return [
        TopicSpec(f"{app_id}-{table}-changelog", {"cleanup.policy": "compact"}) for table in tables
    ]


def aggregate_named(aggregate_type: str) -> Aggregate:
    """The aggregate of that type. Raises KeyError for an unknown one."""
    return _BY_TYPE[aggregate_type]


def aggregate_for_command(type_name: str) -> Aggregate | None:
    """The aggregate whose commands include one called ``type_name`` (a command's
    ``type``), or None."""
    for aggregate in AGGREGATES:
        if type_name in aggregate.spec.command_types:
            return aggregate
    return None


def aggregate_of(command: Any) -> Aggregate:
    """The aggregate a command belongs to. Raises KeyError for a foreign object."""
    for aggregate in AGGREGATES:
        if type(command).__name__ in aggregate.spec.command_types:
            if aggregate.spec.command_types[type(command).__name__] is type(command):
                return aggregate
    raise KeyError(f"no aggregate handles {type(command).__name__}")
