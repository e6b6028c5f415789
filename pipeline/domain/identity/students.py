"""The student aggregate: a prospect converted to a student, and the courses they take.

Created only by a conversion (the process manager sends ``CreateStudent`` with the id
``prospects.person_id(prospect, "student")``), so a prospect has at most one student.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity.profile import Contact, email_claim
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid

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


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateStudent(Command):
    type: Literal["CreateStudent"] = "CreateStudent"
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStudent(Command):
    """Replace the fields given (None: unchanged; a blank phone removes it)."""

    type: Literal["UpdateStudent"] = "UpdateStudent"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollStudent(Command):
    type: Literal["EnrollStudent"] = "EnrollStudent"
    course: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawStudent(Command):
    type: Literal["WithdrawStudent"] = "WithdrawStudent"
    course: str


StudentCommand = Annotated[
    CreateStudent | UpdateStudent | EnrollStudent | WithdrawStudent, Field(discriminator="type")
]


@dataclass(frozen=True, slots=True)
class StudentCreated:
    event_type: ClassVar[str] = "StudentCreated"
    schema_version: ClassVar[int] = 1

    student_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class StudentUpdated:
    """The contact data after the update (all of it)."""

    event_type: ClassVar[str] = "StudentUpdated"
    schema_version: ClassVar[int] = 1

    student_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class StudentEnrolled:
    event_type: ClassVar[str] = "StudentEnrolled"
    schema_version: ClassVar[int] = 1

    student_id: str
    course: str


@dataclass(frozen=True, slots=True)
class StudentWithdrawn:
    event_type: ClassVar[str] = "StudentWithdrawn"
    schema_version: ClassVar[int] = 1

    student_id: str
    course: str


StudentEvent = StudentCreated | StudentUpdated | StudentEnrolled | StudentWithdrawn


@dataclass(frozen=True, slots=True)
class Student:
    student_id: str
    prospect_id: str
    contact: Contact
    created_at: datetime
    updated_at: datetime
    courses: tuple[str, ...] = ()
    """Courses enrolled in, in enrolment order."""


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


def state_to_dict(state: Student) -> dict[str, Any]:
    c = state.contact
    return {
        "student_id": state.student_id,
        "prospect_id": state.prospect_id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "phone": c.phone,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "courses": list(state.courses),
    }


def state_from_dict(d: dict[str, Any]) -> Student:
    return Student(
        student_id=d["student_id"],
        prospect_id=d["prospect_id"],
        contact=Contact(d["first_name"], d["last_name"], d["email"], d["phone"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        courses=tuple(d["courses"]),
    )


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``profile.email_claim``)."""
    if isinstance(command, CreateStudent | UpdateStudent):
        return email_claim(command.email)
    return ()


def claims_held(state: Student | None) -> frozenset[str]:
    return frozenset() if state is None else frozenset({f"email:{state.contact.email}"})


STUDENT_SPEC = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    topic="students",
    decide=decide,
    evolve=evolve,
    state_to_dict=state_to_dict,
    state_from_dict=state_from_dict,
    events=get_args(StudentEvent),
    commands=get_args(get_args(StudentCommand)[0]),
    claims_for=claims_for,
    claims_held=claims_held,
)
EVENT_TYPES = STUDENT_SPEC.event_types
COMMAND_TYPES = STUDENT_SPEC.command_types
to_data, from_data = STUDENT_SPEC.to_data, STUDENT_SPEC.from_data
