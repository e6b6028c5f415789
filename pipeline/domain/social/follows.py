"""The follow aggregate: one (follower, followee) pair, following or not.

Aggregate id = :func:`follow_id` of the pair, so every command about one pair lands on
one partition of ``follows.commands`` and is decided against one state: two concurrent
follows of the same pair are serialised there and the second is rejected (race-free
like the username rule, without a reservation step).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.handling import AggregateSpec
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid
from schemas.uuids import uuid5_text

AGGREGATE_TYPE = "follow"
_PAIR_NAMESPACE = uuid.UUID("3d0f6a8e-5b1c-5f4e-a2d7-9c8b7e6f5a41")


def follow_id(follower_id: str, followee_id: str) -> str:
    """The aggregate id of the pair (uuid5): the same pair always has the same id."""
    return uuid5_text(_PAIR_NAMESPACE, f"{follower_id}>{followee_id}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUser(Command):
    """``follower_id`` (the acting user) starts following ``followee_id``."""

    type: Literal["FollowUser"] = "FollowUser"
    follower_id: str
    followee_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnfollowUser(Command):
    """``follower_id`` stops following ``followee_id``."""

    type: Literal["UnfollowUser"] = "UnfollowUser"
    follower_id: str
    followee_id: str


FollowCommand = Annotated[FollowUser | UnfollowUser, Field(discriminator="type")]


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


@dataclass(frozen=True, slots=True)
class Follow:
    follower_id: str
    followee_id: str
    following: bool


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


def state_to_dict(state: Follow) -> dict[str, Any]:
    return {
        "follower_id": state.follower_id,
        "followee_id": state.followee_id,
        "following": state.following,
    }


def state_from_dict(d: dict[str, Any]) -> Follow:
    return Follow(d["follower_id"], d["followee_id"], bool(d["following"]))


FOLLOW_SPEC = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    topic="follows",
    decide=decide,
    evolve=evolve,
    state_to_dict=state_to_dict,
    state_from_dict=state_from_dict,
    events=get_args(FollowEvent),
    commands=get_args(get_args(FollowCommand)[0]),
)
EVENT_TYPES = FOLLOW_SPEC.event_types
COMMAND_TYPES = FOLLOW_SPEC.command_types
to_data, from_data = FOLLOW_SPEC.to_data, FOLLOW_SPEC.from_data
