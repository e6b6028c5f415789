"""Events of the follow aggregate and their :data:`FollowEvent` union: each one's fields are the
``data`` record of ``schemas/avro/follow/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = ["FollowEvent", "UserFollowed", "UserUnfollowed"]


@dataclass(frozen=True, slots=True)
class UserFollowed:
    event_type: ClassVar[str] = "UserFollowed"
    schema_version: ClassVar[int] = 1

    follower_id: str
    followee_id: str


@dataclass(frozen=True, slots=True)
class UserUnfollowed:
    event_type: ClassVar[str] = "UserUnfollowed"
    schema_version: ClassVar[int] = 1

    follower_id: str
    followee_id: str


FollowEvent = UserFollowed | UserUnfollowed
