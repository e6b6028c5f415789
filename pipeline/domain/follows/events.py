"""Events of the follow aggregate and their :data:`FollowEvent` union: each one's fields are the
``data`` record of ``schemas/avro/follow/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from pipeline.domain.event import DomainEvent


class UserFollowed(DomainEvent, version=1):
    follower_id: str
    followee_id: str


class UserUnfollowed(DomainEvent, version=1):
    follower_id: str
    followee_id: str


FollowEvent = UserFollowed | UserUnfollowed
