"""``decide`` (command -> events | Rejection), ``evolve`` (state + event -> state) and the
e-mail claims of the student aggregate."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.identity.profile import Contact, email_claim
from pipeline.domain.identity.students.commands import (
    CreateStudent,
    EnrollStudent,
    UpdateStudent,
    WithdrawStudent,
)
from pipeline.domain.identity.students.events import (
    StudentCreated,
    StudentEnrolled,
    StudentEvent,
    StudentUpdated,
    StudentWithdrawn,
)
from pipeline.domain.identity.students.state import Student
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid

__all__ = ["AGGREGATE_TYPE", "claims_for", "claims_held", "course_code", "decide", "evolve"]


AGGREGATE_TYPE = "student"

_COURSE = re.compile(r"([A-Z]{2,8})-?([0-9]{2,4}[A-Z]?)")


def course_code(raw: Any) -> str:
    """A course code: 2-8 letters, an optional hyphen, 2-4 digits, an optional letter,
    written one way: upper case with the hyphen (``cs101`` -> ``CS-101``, ``MATH2010b`` ->
    ``MATH-2010B``), so one course has one code. Raises ``InvalidValue("course", ...)``."""
    match = _COURSE.fullmatch(raw.strip().upper()) if isinstance(raw, str) else None
    if match is None:
        raise InvalidValue("course", "must look like CS-101 (letters, digits)")
    return f"{match[1]}-{match[2]}"


def _decide(state: Student | None, command: Command) -> list[StudentEvent] | Rejection:
    if isinstance(command, CreateStudent):
        if state is not None:
            return Rejection(RejectionReason.ALREADY_EXISTS, "student already exists")
        c = Contact.parse(command.first_name, command.last_name, command.email, command.phone)
        return [
            StudentCreated(
                student_id=canonical_uuid("aggregate_id", command.aggregate_id),
                prospect_id=canonical_uuid("prospect_id", command.prospect_id),
                first_name=c.first_name,
                last_name=c.last_name,
                email=c.email,
                phone=c.phone,
            )
        ]
    if state is None:
        return Rejection(RejectionReason.NOT_FOUND, "student not found")
    if isinstance(command, UpdateStudent):
        c = state.contact.updated(
            command.first_name, command.last_name, command.email, command.phone
        )
        if c == state.contact:
            return []
        return [StudentUpdated(state.student_id, c.first_name, c.last_name, c.email, c.phone)]
    if isinstance(command, EnrollStudent | WithdrawStudent):
        course = course_code(command.course)
        enrolled = course in state.courses
        if isinstance(command, EnrollStudent):
            if enrolled:
                return Rejection(RejectionReason.ALREADY_EXISTS, f"already enrolled in {course}")
            return [StudentEnrolled(state.student_id, course)]
        if not enrolled:
            return Rejection(RejectionReason.NOT_FOUND, f"not enrolled in {course}")
        return [StudentWithdrawn(state.student_id, course)]
    raise TypeError(f"no decide rule for {type(command).__name__}")


def decide(state: Student | None, command: Command) -> list[StudentEvent] | Rejection:
    """Rejections: ALREADY_EXISTS (a second create, enrolling twice in a course),
    NOT_FOUND (unknown student, withdrawing from a course not taken), INVALID (a value;
    ``field`` set). An update that changes nothing is accepted with no event."""
    try:
        return _decide(state, command)
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)


def evolve(state: Student | None, event: StudentEvent, occurred_at: datetime) -> Student:
    """Raises InvalidTransition for an event the state cannot take."""
    at = occurred_at.astimezone(UTC)
    if isinstance(event, StudentCreated):
        if state is not None:
            raise InvalidTransition(f"StudentCreated for existing student {state.student_id}")
        contact = Contact(event.first_name, event.last_name, event.email, event.phone)
        return Student(event.student_id, event.prospect_id, contact, at, at)
    if state is None:
        raise InvalidTransition(f"{event.event_type} before StudentCreated")
    if isinstance(event, StudentUpdated):
        contact = Contact(event.first_name, event.last_name, event.email, event.phone)
        return replace(state, contact=contact, updated_at=at)
    if isinstance(event, StudentEnrolled):
        return replace(state, courses=(*state.courses, event.course), updated_at=at)
    courses = tuple(c for c in state.courses if c != event.course)
    return replace(state, courses=courses, updated_at=at)


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``profile.email_claim``)."""
    if isinstance(command, CreateStudent | UpdateStudent):
        return email_claim(command.email)
    return ()


def claims_held(state: Student | None) -> frozenset[str]:
    return frozenset() if state is None else frozenset({f"email:{state.contact.email}"})
