"""State of the prospect aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.domain.identity.profile import Profile


class ConversionRole(StrEnum):
    STUDENT = "student"
    INSTRUCTOR = "instructor"


class ProspectStatus(StrEnum):
    ACTIVE = "active"
    MERGING = "merging"
    """Step 1 of a merge is done: no other command until the merge completes or cancels."""
    MERGED = "merged"
    """A tombstone: ``merged_into`` names the survivor. Accepts no further command."""


@dataclass(frozen=True, slots=True)
class Prospect:
    prospect_id: str
    profile: Profile
    created_at: datetime
    updated_at: datetime
    status: ProspectStatus = ProspectStatus.ACTIVE
    into_id: str | None = None
    """The survivor: of the merge in progress (MERGING) or done (MERGED)."""
    converted: tuple[str, ...] = field(default=())
    """Roles converted to, in order."""


def state_to_dict(state: Prospect) -> dict[str, Any]:
    return {
        "prospect_id": state.prospect_id,
        "profile": state.profile.to_data(),
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "status": str(state.status),
        "into_id": state.into_id,
        "converted": list(state.converted),
    }


def state_from_dict(d: dict[str, Any]) -> Prospect:
    return Prospect(
        prospect_id=d["prospect_id"],
        profile=Profile.from_data(d["profile"]),
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        status=ProspectStatus(d["status"]),
        into_id=d["into_id"],
        converted=tuple(d["converted"]),
    )
