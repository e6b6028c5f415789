"""The aggregate types the write side runs, and the topics and tables of each.

One ``Aggregate`` per type wires the pure domain (``AggregateSpec``, commands, uniqueness
claims) to its Kafka topics and Faust table; the command agent, the codec and the
routing are the same code for every type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from pipeline.common import topics
from pipeline.domain import partners, users
from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity import instructors, prospects, reactions, students
from pipeline.domain.social import chirps, follows


@dataclass(frozen=True)
class Aggregate:
    spec: AggregateSpec
    commands: TypeAdapter[Any]
    """Validates and serialises this type's commands (a discriminated union on ``type``)."""
    command_types: frozenset[type]
    commands_topic: str
    events_topic: str
    dlq_topic: str
    state_table: str
    reservations_topic: str | None = None
    claims_table: str | None = None
    """Faust table of claim -> owner, partitioned like ``reservations_topic``."""
    claims_for: Callable[[Any], tuple[str, ...]] = lambda _command: ()
    claims_held: Callable[[Any], frozenset[str]] = lambda _state: frozenset()
    compensations: Callable[[Any, str], list[Any]] = lambda _command, _reason: []
    """Commands (of any aggregate) to send when a reservation refuses ``command``."""


USERS = Aggregate(
    spec=users.USER_SPEC,
    commands=TypeAdapter(users.UserCommand),
    command_types=frozenset(users.COMMAND_TYPES.values()),
    commands_topic=topics.USER_COMMANDS,
    events_topic=topics.USER_EVENTS,
    dlq_topic=topics.USER_DLQ,
    state_table="users-state",
    reservations_topic=topics.USER_RESERVATIONS,
    claims_table="user-claims",
    claims_for=users.claims_for,
    claims_held=users.claims_held,
)

PARTNERS = Aggregate(
    spec=partners.PARTNER_SPEC,
    commands=TypeAdapter(partners.PartnerCommand),
    command_types=frozenset(partners.COMMAND_TYPES.values()),
    commands_topic=topics.PARTNER_COMMANDS,
    events_topic=topics.PARTNER_EVENTS,
    dlq_topic=topics.PARTNER_DLQ,
    state_table="partners-state",
)

CHIRPS = Aggregate(
    spec=chirps.CHIRP_SPEC,
    commands=TypeAdapter(chirps.ChirpCommand),
    command_types=frozenset(chirps.COMMAND_TYPES.values()),
    commands_topic=topics.CHIRP_COMMANDS,
    events_topic=topics.CHIRP_EVENTS,
    dlq_topic=topics.CHIRP_DLQ,
    state_table="chirps-state",
)

FOLLOWS = Aggregate(
    spec=follows.FOLLOW_SPEC,
    commands=TypeAdapter(follows.FollowCommand),
    command_types=frozenset(follows.COMMAND_TYPES.values()),
    commands_topic=topics.FOLLOW_COMMANDS,
    events_topic=topics.FOLLOW_EVENTS,
    dlq_topic=topics.FOLLOW_DLQ,
    state_table="follows-state",
)

PROSPECTS = Aggregate(
    spec=prospects.PROSPECT_SPEC,
    commands=TypeAdapter(prospects.ProspectCommand),
    command_types=frozenset(prospects.COMMAND_TYPES.values()),
    commands_topic=topics.PROSPECT_COMMANDS,
    events_topic=topics.PROSPECT_EVENTS,
    dlq_topic=topics.PROSPECT_DLQ,
    state_table="prospects-state",
    reservations_topic=topics.PROSPECT_RESERVATIONS,
    claims_table="prospect-claims",
    claims_for=prospects.claims_for,
    claims_held=prospects.claims_held,
)

STUDENTS = Aggregate(
    spec=students.STUDENT_SPEC,
    commands=TypeAdapter(students.StudentCommand),
    command_types=frozenset(students.COMMAND_TYPES.values()),
    commands_topic=topics.STUDENT_COMMANDS,
    events_topic=topics.STUDENT_EVENTS,
    dlq_topic=topics.STUDENT_DLQ,
    state_table="students-state",
    reservations_topic=topics.STUDENT_RESERVATIONS,
    claims_table="student-claims",
    claims_for=students.claims_for,
    claims_held=students.claims_held,
    compensations=reactions.compensations,
)

INSTRUCTORS = Aggregate(
    spec=instructors.INSTRUCTOR_SPEC,
    commands=TypeAdapter(instructors.InstructorCommand),
    command_types=frozenset(instructors.COMMAND_TYPES.values()),
    commands_topic=topics.INSTRUCTOR_COMMANDS,
    events_topic=topics.INSTRUCTOR_EVENTS,
    dlq_topic=topics.INSTRUCTOR_DLQ,
    state_table="instructors-state",
    reservations_topic=topics.INSTRUCTOR_RESERVATIONS,
    claims_table="instructor-claims",
    claims_for=instructors.claims_for,
    claims_held=instructors.claims_held,
    compensations=reactions.compensations,
)

AGGREGATES = (USERS, PARTNERS, CHIRPS, FOLLOWS, PROSPECTS, STUDENTS, INSTRUCTORS)


def changelog_topics(app_id: str) -> list[topics.TopicSpec]:
    """The changelog topic of every Faust table (``<app id>-<table>-changelog``, Faust's
    naming), compacted, partitioned like their source topics.

    Created with the project's topics, before Faust starts. Left to Faust, a changelog
    made on a cold start was not yet in aiokafka's metadata snapshot when the first
    command wrote its table: faust-streaming 0.15 saw "0 partitions", raised
    PartitionsMismatch and the command agent stayed crashed (``make run`` hung; found by
    tests/e2e/test_make_run.py).
    """
    tables = [a.state_table for a in AGGREGATES]
    tables += [a.claims_table for a in AGGREGATES if a.claims_table]
    return [
        topics.TopicSpec(f"{app_id}-{table}-changelog", {"cleanup.policy": "compact"})
        for table in tables
    ]


def aggregate_of(command: Any) -> Aggregate:
    """The aggregate a command belongs to. Raises KeyError for a foreign object."""
    for aggregate in AGGREGATES:
        if type(command) in aggregate.command_types:
            return aggregate
    raise KeyError(f"no aggregate handles {type(command).__name__}")
