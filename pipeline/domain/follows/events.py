"""Events of the follow aggregate and their :data:`FollowEvent` union: each one's fields are the
``data`` record of ``schemas/avro/follow/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.event import DomainEvent


@dataclass(frozen=True, slots=True)
class FollowPair:
    """Who follows (or stops following) whom: the pair the aggregate is, and all the
    fields, in order, of both its events."""

    follower_id: str
    followee_id: str


class UserFollowed(FollowPair, DomainEvent, version=1):
    """The follower started following the followee."""


class UserUnfollowed(FollowPair, DomainEvent, version=1):
    """The follower stopped following the followee."""


FollowEvent = UserFollowed | UserUnfollowed
