"""Events of the student aggregate and their :data:`StudentEvent` union: each one's fields are the
``data`` record of ``schemas/avro/student/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "StudentCreated",
    "StudentEnrolled",
    "StudentEvent",
    "StudentUpdated",
    "StudentWithdrawn",
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
