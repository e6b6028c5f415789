"""The follow aggregate: one (follower, followee) pair, following or not.

Aggregate id = :func:`follow_id` of the pair, so every command about one pair lands on
one partition of ``follows.commands`` and is decided against one state: two concurrent
follows of the same pair are serialised there and the second is rejected (race-free
like the username rule, without a reservation step). That both sides exist and are
active is checked where the acting user is authenticated (the API, against the users
read model: see ``api/routes/social.py``). Commands, events, state, decide/evolve and
:data:`FOLLOW_SPEC` for the generic handler (``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.follows import aggregate, state
from pipeline.domain.follows.aggregate import AGGREGATE_TYPE, decide, evolve, follow_id
from pipeline.domain.follows.commands import FollowCommand, FollowUser, UnfollowUser
from pipeline.domain.follows.events import FollowEvent, UserFollowed, UserUnfollowed
from pipeline.domain.follows.state import Follow, state_from_dict, state_to_dict
from pipeline.domain.handling import AggregateSpec

__all__ = [
    "AGGREGATE_TYPE",
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "FOLLOW_SPEC",
    "Follow",
    "FollowCommand",
    "FollowEvent",
    "FollowUser",
    "UnfollowUser",
    "UserFollowed",
    "UserUnfollowed",
    "decide",
    "evolve",
    "follow_id",
    "from_data",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

FOLLOW_SPEC = AggregateSpec.declare(
    "follow", "follows", aggregate, state, FollowEvent, FollowCommand
)
EVENT_TYPES, COMMAND_TYPES = FOLLOW_SPEC.event_types, FOLLOW_SPEC.command_types
to_data, from_data = FOLLOW_SPEC.to_data, FOLLOW_SPEC.from_data
