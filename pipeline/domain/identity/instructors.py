"""The instructor aggregate: a prospect converted to an instructor, active until
deactivated. Created only by a conversion (id ``prospects.person_id(prospect,
"instructor")``), so a prospect has at most one instructor."""

from __future__ import annotations

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

AGGREGATE_TYPE = "instructor"
REASON_MAX_LENGTH = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInstructor(Command):
    type: Literal["CreateInstructor"] = "CreateInstructor"
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateInstructor(Command):
    """Replace the fields given (None: unchanged; a blank phone removes it)."""

    type: Literal["UpdateInstructor"] = "UpdateInstructor"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeactivateInstructor(Command):
    type: Literal["DeactivateInstructor"] = "DeactivateInstructor"
    reason: str = ""


InstructorCommand = Annotated[
    CreateInstructor | UpdateInstructor | DeactivateInstructor, Field(discriminator="type")
]


@dataclass(frozen=True, slots=True)
class InstructorCreated:
    event_type: ClassVar[str] = "InstructorCreated"
    schema_version: ClassVar[int] = 1

    instructor_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class InstructorUpdated:
    """The contact data after the update (all of it)."""

    event_type: ClassVar[str] = "InstructorUpdated"
    schema_version: ClassVar[int] = 1

    instructor_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class InstructorDeactivated:
    event_type: ClassVar[str] = "InstructorDeactivated"
    schema_version: ClassVar[int] = 1

    instructor_id: str
    reason: str


InstructorEvent = InstructorCreated | InstructorUpdated | InstructorDeactivated


@dataclass(frozen=True, slots=True)
class Instructor:
    instructor_id: str
    prospect_id: str
    contact: Contact
    created_at: datetime
    updated_at: datetime
    active: bool = True


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


def state_to_dict(state: Instructor) -> dict[str, Any]:
    c = state.contact
    return {
        "instructor_id": state.instructor_id,
        "prospect_id": state.prospect_id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "phone": c.phone,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "active": state.active,
    }


def state_from_dict(d: dict[str, Any]) -> Instructor:
    return Instructor(
        instructor_id=d["instructor_id"],
        prospect_id=d["prospect_id"],
        contact=Contact(d["first_name"], d["last_name"], d["email"], d["phone"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        active=bool(d["active"]),
    )


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``profile.email_claim``)."""
    if isinstance(command, CreateInstructor | UpdateInstructor):
        return email_claim(command.email)
    return ()


def claims_held(state: Instructor | None) -> frozenset[str]:
    """A deactivated instructor keeps its e-mail (it may be reactivated by an operator)."""
    return frozenset() if state is None else frozenset({f"email:{state.contact.email}"})


INSTRUCTOR_SPEC = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    topic="instructors",
    decide=decide,
    evolve=evolve,
    state_to_dict=state_to_dict,
    state_from_dict=state_from_dict,
    events=get_args(InstructorEvent),
    commands=get_args(get_args(InstructorCommand)[0]),
    claims_for=claims_for,
    claims_held=claims_held,
)
EVENT_TYPES = INSTRUCTOR_SPEC.event_types
COMMAND_TYPES = INSTRUCTOR_SPEC.command_types
to_data, from_data = INSTRUCTOR_SPEC.to_data, INSTRUCTOR_SPEC.from_data
