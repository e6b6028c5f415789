"""Events of the instructor aggregate and their :data:`InstructorEvent` union: each one's
fields are the ``data`` record of
``schemas/avro/instructor/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from pipeline.domain.event import DomainEvent


class InstructorCreated(DomainEvent, version=1):
    instructor_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


class InstructorUpdated(DomainEvent, version=1):
    """The contact data after the update (all of it)."""

    instructor_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


class InstructorDeactivated(DomainEvent, version=1):
    instructor_id: str
    reason: str


class InstructorReactivated(DomainEvent, version=1):
    instructor_id: str


InstructorEvent = (
    InstructorCreated | InstructorUpdated | InstructorDeactivated | InstructorReactivated
)
