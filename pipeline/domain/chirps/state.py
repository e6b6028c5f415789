"""State of the chirp aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Chirp:
    chirp_id: str
    author_id: str
    text: str
    posted_at: datetime
    deleted: bool = False


def state_to_dict(state: Chirp) -> dict[str, Any]:
    return {
        "chirp_id": state.chirp_id,
        "author_id": state.author_id,
        "text": state.text,
        "posted_at": state.posted_at.isoformat(),
        "deleted": state.deleted,
    }


def state_from_dict(d: dict[str, Any]) -> Chirp:
    return Chirp(
        d["chirp_id"],
        d["author_id"],
        d["text"],
        datetime.fromisoformat(d["posted_at"]),
        bool(d["deleted"]),
    )
