"""``decide`` (command -> events | Rejection), ``evolve`` (state + event -> state) and the
e-mail claims of the student aggregate: the person's (``pipeline.domain.identity.person``)
plus enrolment in courses."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidValue
from pipeline.domain.identity import person
from pipeline.domain.identity.students import commands, events
from pipeline.domain.identity.students.events import StudentEvent
from pipeline.domain.identity.students.state import Student
from pipeline.domain.results import Rejection, RejectionReason

AGGREGATE_TYPE = "student"
_COURSE = re.compile(r"([A-Z]{2,8})-?([0-9]{2,4}[A-Z]?)")
# a student holds and claims its e-mail as every person does
claims_for, claims_held = person.claims_for, person.claims_held
_PERSON = person.Person(
    noun=AGGREGATE_TYPE,
    id_field="student_id",
    state=Student,
    create=commands.CreateStudent,
    update=commands.UpdateStudent,
    created=events.StudentCreated,
    updated=events.StudentUpdated,
)


def course_code(raw: Any) -> str:
    """A course code: 2-8 letters, an optional hyphen, 2-4 digits, an optional letter,
    written one way: upper case with the hyphen (``cs101`` -> ``CS-101``, ``MATH2010b`` ->
    ``MATH-2010B``), so one course has one code. Raises ``InvalidValue("course", ...)``."""
    match = _COURSE.fullmatch(raw.strip().upper()) if isinstance(raw, str) else None
    if match is None:
        raise InvalidValue("course", "must look like CS-101 (letters, digits)")
    return f"{match[1]}-{match[2]}"


def _enroll(state: Student, command: commands.EnrollStudent) -> list[StudentEvent] | Rejection:
    course = course_code(command.course)
    if course in state.courses:
        return Rejection(RejectionReason.ALREADY_EXISTS, f"already enrolled in {course}")
    return [events.StudentEnrolled(state.student_id, course)]


def _withdraw(state: Student, command: commands.WithdrawStudent) -> list[StudentEvent] | Rejection:
    course = course_code(command.course)
    if course not in state.courses:
        return Rejection(RejectionReason.NOT_FOUND, f"not enrolled in {course}")
    return [events.StudentWithdrawn(state.student_id, course)]


def decide(state: Student | None, command: Command) -> list[StudentEvent] | Rejection:
    """Rejections: ALREADY_EXISTS (a second create, enrolling twice in a course),
    NOT_FOUND (unknown student, withdrawing from a course not taken), INVALID (a value;
    ``field`` set). An update that changes nothing is accepted with no event."""
    return _PERSON.decide(
        state, command, {commands.EnrollStudent: _enroll, commands.WithdrawStudent: _withdraw}
    )


def _enrolled(state: Student, event: events.StudentEnrolled, at: datetime) -> Student:
    return replace(state, courses=(*state.courses, event.course), updated_at=at)


def _withdrawn(state: Student, event: events.StudentWithdrawn, at: datetime) -> Student:
    courses = tuple(c for c in state.courses if c != event.course)
    return replace(state, courses=courses, updated_at=at)


def evolve(state: Student | None, event: StudentEvent, occurred_at: datetime) -> Student:
    """Raises InvalidTransition for an event the state cannot take."""
    rules = {events.StudentEnrolled: _enrolled, events.StudentWithdrawn: _withdrawn}
    return _PERSON.evolve(state, event, occurred_at, rules)
