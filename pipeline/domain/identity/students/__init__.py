"""The student aggregate: a prospect converted to a student, and the courses they take.

Created by a conversion (the process manager sends ``CreateStudent`` with the id
``prospects.person_id(prospect, "student")``, so a prospect has at most one student), or
directly by an admin (no prospect behind it).

Commands, events, state, decide/evolve and :data:`STUDENT_SPEC` for the generic handler
(``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity.students import aggregate, state
from pipeline.domain.identity.students.aggregate import (
    claims_for,
    claims_held,
    course_code,
    decide,
    evolve,
)
from pipeline.domain.identity.students.commands import (
    CreateStudent,
    EnrollStudent,
    StudentCommand,
    UpdateStudent,
    WithdrawStudent,
)
from pipeline.domain.identity.students.events import (
    StudentCreated,
    StudentEnrolled,
    StudentEvent,
    StudentUpdated,
    StudentWithdrawn,
)
from pipeline.domain.identity.students.state import Student, state_from_dict, state_to_dict

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "STUDENT_SPEC",
    "CreateStudent",
    "EnrollStudent",
    "Student",
    "StudentCreated",
    "StudentEnrolled",
    "StudentUpdated",
    "StudentWithdrawn",
    "UpdateStudent",
    "WithdrawStudent",
    "claims_for",
    "claims_held",
    "course_code",
    "decide",
    "evolve",
    "from_data",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

STUDENT_SPEC = AggregateSpec.declare(
    "student", "students", aggregate, state, StudentEvent, StudentCommand
)
EVENT_TYPES, COMMAND_TYPES = STUDENT_SPEC.event_types, STUDENT_SPEC.command_types
to_data, from_data = STUDENT_SPEC.to_data, STUDENT_SPEC.from_data
