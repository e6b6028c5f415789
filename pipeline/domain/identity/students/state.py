"""State of the student aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.identity.profile import Contact

__all__ = ["Student", "state_from_dict", "state_to_dict"]


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
