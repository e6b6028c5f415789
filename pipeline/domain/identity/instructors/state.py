"""State of the instructor aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.identity.person import person_from_dict, person_to_dict
from pipeline.domain.identity.profile import Contact


@dataclass(frozen=True, slots=True)
class Instructor:
    instructor_id: str
    prospect_id: str
    contact: Contact
    created_at: datetime
    updated_at: datetime
    active: bool = True


def state_to_dict(state: Instructor) -> dict[str, Any]:
    """The person's keys (``person.person_to_dict``) and ``active``."""
    return {**person_to_dict("instructor_id", state), "active": state.active}


def state_from_dict(d: dict[str, Any]) -> Instructor:
    """Inverse of :func:`state_to_dict`. Raises KeyError or ValueError."""
    return Instructor(**person_from_dict("instructor_id", d), active=bool(d["active"]))
