"""Events of the student aggregate and their :data:`StudentEvent` union: each one's fields are the
``data`` record of ``schemas/avro/student/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.event import DomainEvent


class StudentCreated(DomainEvent, version=1):
    student_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


class StudentUpdated(DomainEvent, version=1):
    """The contact data after the update (all of it)."""

    student_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class StudentCourse:
    """A student and a course code (``aggregate.course_code``): all the fields, in order,
    of the two events below."""

    student_id: str
    course: str


class StudentEnrolled(StudentCourse, DomainEvent, version=1):
    """The student enrolled in the course."""


class StudentWithdrawn(StudentCourse, DomainEvent, version=1):
    """The student withdrew from the course."""


StudentEvent = StudentCreated | StudentUpdated | StudentEnrolled | StudentWithdrawn
