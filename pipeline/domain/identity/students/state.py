"""State of the student aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.identity.person import person_from_dict, person_to_dict
from pipeline.domain.identity.profile import Contact


@dataclass(frozen=True, slots=True)
class Student:
    student_id: str
    prospect_id: str
    contact: Contact
    created_at: datetime
    updated_at: datetime
    courses: tuple[str, ...] = ()
    """Courses enrolled in, in enrolment order."""


def state_to_dict(state: Student) -> dict[str, Any]:
    """The person's keys (``person.person_to_dict``) and ``courses`` as a list."""
    return {**person_to_dict("student_id", state), "courses": list(state.courses)}


def state_from_dict(d: dict[str, Any]) -> Student:
    """Inverse of :func:`state_to_dict`. Raises KeyError or ValueError."""
    return Student(**person_from_dict("student_id", d), courses=tuple(d["courses"]))
