"""``decide`` (command -> events | Rejection) and ``evolve`` (state + event -> state) of
the follow aggregate."""

from __future__ import annotations

import uuid
from datetime import datetime

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.follows.commands import FollowUser, UnfollowUser
from pipeline.domain.follows.events import FollowEvent, UserFollowed, UserUnfollowed
from pipeline.domain.follows.state import Follow
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid
from schemas.uuids import uuid5_text

AGGREGATE_TYPE = "follow"

_PAIR_NAMESPACE = uuid.UUID("3d0f6a8e-5b1c-5f4e-a2d7-9c8b7e6f5a41")


def follow_id(follower_id: str, followee_id: str) -> str:
    """The aggregate id of the pair (uuid5): the same pair always has the same id."""
    return uuid5_text(_PAIR_NAMESPACE, f"{follower_id}>{followee_id}")


def _pair(command: FollowUser | UnfollowUser) -> tuple[str, str]:
    follower = canonical_uuid("follower_id", command.follower_id)
    followee = canonical_uuid("followee_id", command.followee_id)
    if follower == followee:
        raise InvalidValue("followee_id", "a user cannot follow themselves")
    if command.aggregate_id != follow_id(follower, followee):
        raise InvalidValue("aggregate_id", "must be follow_id(follower_id, followee_id)")
    return follower, followee


def decide(state: Follow | None, command: Command) -> list[FollowEvent] | Rejection:
    """FollowUser -> UserFollowed unless already following (ALREADY_EXISTS); UnfollowUser
    -> UserUnfollowed unless not following (NOT_FOUND); INVALID for a self-follow or an
    aggregate id that is not the pair's."""
    if not isinstance(command, FollowUser | UnfollowUser):
        raise TypeError(f"no decide rule for {type(command).__name__}")
    try:
        follower, followee = _pair(command)
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)
    following = state is not None and state.following
    if isinstance(command, FollowUser):
        if following:
            return Rejection(RejectionReason.ALREADY_EXISTS, "already following this user")
        return [UserFollowed(follower_id=follower, followee_id=followee)]
    if not following:
        return Rejection(RejectionReason.NOT_FOUND, "not following this user")
    return [UserUnfollowed(follower_id=follower, followee_id=followee)]


def evolve(state: Follow | None, event: FollowEvent, occurred_at: datetime) -> Follow:
    """Raises InvalidTransition for a follow while following or an unfollow while not."""
    following = state is not None and state.following
    if isinstance(event, UserFollowed) == following:
        raise InvalidTransition(f"{event.event_type} while following={following}")
    return Follow(event.follower_id, event.followee_id, isinstance(event, UserFollowed))
