"""State of the chirp aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.table_form import from_table, to_table


@dataclass(frozen=True, slots=True)
class Chirp:
    chirp_id: str
    author_id: str
    text: str
    posted_at: datetime
    deleted: bool = False


def state_to_dict(state: Chirp) -> dict[str, Any]:
    """``table_form.to_table``: ``posted_at`` as an ISO-8601 string."""
    return to_table(state)


def state_from_dict(d: dict[str, Any]) -> Chirp:
    """Inverse of :func:`state_to_dict`. Raises KeyError or ValueError."""
    return from_table(Chirp, d)
