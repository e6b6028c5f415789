"""The user aggregate: commands, events, state, decide/evolve and :data:`USER_SPEC` for the
generic handler (``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.users.aggregate import (
    AGGREGATE_TYPE,
    User,
    UserStatus,
    claims_for,
    claims_held,
    decide,
    evolve,
    state_from_dict,
    state_to_dict,
)
from pipeline.domain.users.commands import COMMAND_TYPES, UserCommand
from pipeline.domain.users.events import EVENT_TYPES, UserEvent, from_data, to_data

__all__ = [
    "AGGREGATE_TYPE",
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "USER_SPEC",
    "User",
    "UserCommand",
    "UserEvent",
    "UserStatus",
    "claims_for",
    "claims_held",
    "decide",
    "evolve",
    "from_data",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

USER_SPEC = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    decide=decide,
    evolve=evolve,
    to_data=to_data,
    state_to_dict=state_to_dict,
    state_from_dict=state_from_dict,
)
