"""State of the follow aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Follow:
    follower_id: str
    followee_id: str
    following: bool


def state_to_dict(state: Follow) -> dict[str, Any]:
    return {
        "follower_id": state.follower_id,
        "followee_id": state.followee_id,
        "following": state.following,
    }


def state_from_dict(d: dict[str, Any]) -> Follow:
    return Follow(d["follower_id"], d["followee_id"], bool(d["following"]))
