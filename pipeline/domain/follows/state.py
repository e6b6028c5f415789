"""State of the follow aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.domain.table_form import from_table, to_table


@dataclass(frozen=True, slots=True)
class Follow:
    follower_id: str
    followee_id: str
    following: bool


def state_to_dict(state: Follow) -> dict[str, Any]:
    """``table_form.to_table``: the three fields as they are."""
    return to_table(state)


def state_from_dict(d: dict[str, Any]) -> Follow:
    """Inverse of :func:`state_to_dict`. Raises KeyError."""
    return from_table(Follow, d)
