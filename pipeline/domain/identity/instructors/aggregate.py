"""``decide`` (command -> events | Rejection), ``evolve`` (state + event -> state) and the
e-mail claims of the instructor aggregate."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.identity.instructors.commands import (
    CreateInstructor,
    DeactivateInstructor,
    UpdateInstructor,
)
from pipeline.domain.identity.instructors.events import (
    InstructorCreated,
    InstructorDeactivated,
    InstructorEvent,
    InstructorUpdated,
)
from pipeline.domain.identity.instructors.state import Instructor
from pipeline.domain.identity.profile import Contact, email_claim
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid

__all__ = ["AGGREGATE_TYPE", "REASON_MAX_LENGTH", "claims_for", "claims_held", "decide", "evolve"]


AGGREGATE_TYPE = "instructor"

REASON_MAX_LENGTH = 500


def _decide(state: Instructor | None, command: Command) -> list[InstructorEvent] | Rejection:
    if isinstance(command, CreateInstructor):
        if state is not None:
            return Rejection(RejectionReason.ALREADY_EXISTS, "instructor already exists")
        c = Contact.parse(command.first_name, command.last_name, command.email, command.phone)
        return [
            InstructorCreated(
                instructor_id=canonical_uuid("aggregate_id", command.aggregate_id),
                prospect_id=canonical_uuid("prospect_id", command.prospect_id),
                first_name=c.first_name,
                last_name=c.last_name,
                email=c.email,
                phone=c.phone,
            )
        ]
    if state is None:
        return Rejection(RejectionReason.NOT_FOUND, "instructor not found")
    if not state.active:
        return Rejection(RejectionReason.INVALID_STATE, "instructor is deactivated")
    if isinstance(command, UpdateInstructor):
        c = state.contact.updated(
            command.first_name, command.last_name, command.email, command.phone
        )
        if c == state.contact:
            return []
        return [InstructorUpdated(state.instructor_id, c.first_name, c.last_name, c.email, c.phone)]
    if isinstance(command, DeactivateInstructor):
        if len(command.reason) > REASON_MAX_LENGTH:
            raise InvalidValue("reason", f"must be at most {REASON_MAX_LENGTH} characters")
        return [InstructorDeactivated(state.instructor_id, command.reason)]
    raise TypeError(f"no decide rule for {type(command).__name__}")


def decide(state: Instructor | None, command: Command) -> list[InstructorEvent] | Rejection:
    """Rejections: ALREADY_EXISTS (a second create), NOT_FOUND (unknown instructor),
    INVALID_STATE (anything on a deactivated instructor), INVALID (a value; ``field``
    set). An update that changes nothing is accepted with no event."""
    try:
        return _decide(state, command)
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)


def evolve(state: Instructor | None, event: InstructorEvent, occurred_at: datetime) -> Instructor:
    """Raises InvalidTransition for an event the state cannot take."""
    at = occurred_at.astimezone(UTC)
    if isinstance(event, InstructorCreated):
        if state is not None:
            raise InvalidTransition(f"InstructorCreated for existing {state.instructor_id}")
        contact = Contact(event.first_name, event.last_name, event.email, event.phone)
        return Instructor(event.instructor_id, event.prospect_id, contact, at, at)
    if state is None:
        raise InvalidTransition(f"{event.event_type} before InstructorCreated")
    if isinstance(event, InstructorUpdated):
        contact = Contact(event.first_name, event.last_name, event.email, event.phone)
        return replace(state, contact=contact, updated_at=at)
    return replace(state, active=False, updated_at=at)


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``profile.email_claim``)."""
    if isinstance(command, CreateInstructor | UpdateInstructor):
        return email_claim(command.email)
    return ()


def claims_held(state: Instructor | None) -> frozenset[str]:
    """A deactivated instructor keeps its e-mail (it may be reactivated by an operator)."""
    return frozenset() if state is None else frozenset({f"email:{state.contact.email}"})
