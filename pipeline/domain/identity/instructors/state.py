"""State of the instructor aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.identity.profile import Contact

__all__ = ["Instructor", "state_from_dict", "state_to_dict"]


@dataclass(frozen=True, slots=True)
class Instructor:
    instructor_id: str
    prospect_id: str
    contact: Contact
    created_at: datetime
    updated_at: datetime
    active: bool = True


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
