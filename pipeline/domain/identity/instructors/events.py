"""Events of the instructor aggregate and their :data:`InstructorEvent` union: each one's
fields are the ``data`` record of
``schemas/avro/instructor/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["InstructorCreated", "InstructorDeactivated", "InstructorEvent", "InstructorUpdated"]


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
