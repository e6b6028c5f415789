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
from pipeline.domain.follows.events import FollowEvent, UserFollowed
from pipeline.domain.handling import AggregateSpec

__all__ = [
    "AGGREGATE_TYPE",
    "EVENT_TYPES",
    "FOLLOW_SPEC",
    "FollowUser",
    "UnfollowUser",
    "UserFollowed",
    "decide",
    "evolve",
    "follow_id",
    "from_data",
]

FOLLOW_SPEC = AggregateSpec.declare(
    "follow", "follows", aggregate, state, FollowEvent, FollowCommand
)
EVENT_TYPES, from_data = FOLLOW_SPEC.event_types, FOLLOW_SPEC.from_data
