"""The instructor aggregate: a prospect converted to an instructor (id
``prospects.person_id(prospect, "instructor")``, so a prospect has at most one), or one an
admin created directly; deactivated and reactivated by staff.

Commands, events, state, decide/evolve and :data:`INSTRUCTOR_SPEC` for the generic handler
(``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity.instructors import aggregate, state
from pipeline.domain.identity.instructors.aggregate import claims_for, claims_held, decide, evolve
from pipeline.domain.identity.instructors.commands import (
    CreateInstructor,
    DeactivateInstructor,
    InstructorCommand,
    ReactivateInstructor,
    UpdateInstructor,
)
from pipeline.domain.identity.instructors.events import (
    InstructorCreated,
    InstructorDeactivated,
    InstructorEvent,
    InstructorReactivated,
    InstructorUpdated,
)
from pipeline.domain.identity.instructors.state import Instructor, state_from_dict, state_to_dict

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "INSTRUCTOR_SPEC",
    "CreateInstructor",
    "DeactivateInstructor",
    "Instructor",
    "InstructorCreated",
    "InstructorDeactivated",
    "InstructorReactivated",
    "InstructorUpdated",
    "ReactivateInstructor",
    "UpdateInstructor",
    "claims_for",
    "claims_held",
    "decide",
    "evolve",
    "from_data",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

INSTRUCTOR_SPEC = AggregateSpec.declare(
    "instructor", "instructors", aggregate, state, InstructorEvent, InstructorCommand
)
EVENT_TYPES, COMMAND_TYPES = INSTRUCTOR_SPEC.event_types, INSTRUCTOR_SPEC.command_types
to_data, from_data = INSTRUCTOR_SPEC.to_data, INSTRUCTOR_SPEC.from_data
