"""``decide`` (command -> events | Rejection), ``evolve`` (state + event -> state) and the
e-mail claims of the instructor aggregate: the person's (``pipeline.domain.identity.person``)
plus deactivation."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.identity import person
from pipeline.domain.identity.instructors.commands import (
    CreateInstructor,
    DeactivateInstructor,
    ReactivateInstructor,
    UpdateInstructor,
)
from pipeline.domain.identity.instructors.events import (
    InstructorCreated,
    InstructorDeactivated,
    InstructorEvent,
    InstructorReactivated,
    InstructorUpdated,
)
from pipeline.domain.identity.instructors.state import Instructor
from pipeline.domain.results import Rejection, RejectionReason

AGGREGATE_TYPE = "instructor"
REASON_MAX_LENGTH = 500
# a instructor holds and claims its e-mail as every person does
claims_for, claims_held = person.claims_for, person.claims_held
_PERSON = person.Person(
    noun=AGGREGATE_TYPE,
    id_field="instructor_id",
    state=Instructor,
    create=CreateInstructor,
    update=UpdateInstructor,
    created=InstructorCreated,
    updated=InstructorUpdated,
)


def _refusal(state: Instructor) -> Rejection | None:
    if state.active:
        return None
    return Rejection(RejectionReason.INVALID_STATE, "instructor is deactivated")


def _deactivate(state: Instructor, command: DeactivateInstructor) -> list[InstructorEvent]:
    if len(command.reason) > REASON_MAX_LENGTH:
        raise InvalidValue("reason", f"must be at most {REASON_MAX_LENGTH} characters")
    return [InstructorDeactivated(state.instructor_id, command.reason)]


def decide(state: Instructor | None, command: Command) -> list[InstructorEvent] | Rejection:
    """Rejections: ALREADY_EXISTS (a second create), NOT_FOUND (unknown instructor),
    INVALID_STATE (anything but a reactivation on a deactivated instructor; a reactivation
    of an active one), INVALID (a value; ``field`` set). An update that changes nothing is
    accepted with no event."""
    if isinstance(command, ReactivateInstructor):
        if state is None:
            return Rejection(RejectionReason.NOT_FOUND, "instructor not found")
        if state.active:
            return Rejection(RejectionReason.INVALID_STATE, "instructor is active")
        return [InstructorReactivated(state.instructor_id)]
    return _PERSON.decide(state, command, {DeactivateInstructor: _deactivate}, _refusal)


def _deactivated(state: Instructor, event: InstructorDeactivated, at: datetime) -> Instructor:
    return replace(state, active=False, updated_at=at)


def _reactivated(state: Instructor, event: InstructorReactivated, at: datetime) -> Instructor:
    if state.active:
        raise InvalidTransition(f"{event.event_type} of an active instructor")
    return replace(state, active=True, updated_at=at)


def evolve(state: Instructor | None, event: InstructorEvent, occurred_at: datetime) -> Instructor:
    """Raises InvalidTransition for an event the state cannot take."""
    rules = {InstructorDeactivated: _deactivated, InstructorReactivated: _reactivated}
    return _PERSON.evolve(state, event, occurred_at, rules)
