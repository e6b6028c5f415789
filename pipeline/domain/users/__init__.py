"""The user aggregate: commands, events, state, decide/evolve and :data:`USER_SPEC` for the
generic handler (``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.users import aggregate, state
from pipeline.domain.users.aggregate import decide, evolve
from pipeline.domain.users.commands import UserCommand
from pipeline.domain.users.events import UserEvent
from pipeline.domain.users.state import User, UserStatus

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "USER_SPEC",
    "User",
    "UserStatus",
    "decide",
    "evolve",
    "from_data",
    "to_data",
]

USER_SPEC = AggregateSpec.declare("user", "users", aggregate, state, UserEvent, UserCommand)
EVENT_TYPES, COMMAND_TYPES = USER_SPEC.event_types, USER_SPEC.command_types
to_data, from_data = USER_SPEC.to_data, USER_SPEC.from_data
