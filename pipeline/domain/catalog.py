"""Every aggregate type the system runs, in one list: add a new aggregate's declaration
(its package's ``AggregateSpec``) here, and its topics, Faust tables, command agent,
routing and event-log archive follow from it (README, "Add an aggregate")."""

from __future__ import annotations

from pipeline.domain.chirps import CHIRP_SPEC
from pipeline.domain.follows import FOLLOW_SPEC
from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity.instructors import INSTRUCTOR_SPEC
from pipeline.domain.identity.prospects import PROSPECT_SPEC
from pipeline.domain.identity.students import STUDENT_SPEC
from pipeline.domain.partners import PARTNER_SPEC
from pipeline.domain.users import USER_SPEC

__all__ = ["AGGREGATES", "by_type"]

AGGREGATES: tuple[AggregateSpec, ...] = (
    USER_SPEC,
    PARTNER_SPEC,
    CHIRP_SPEC,
    FOLLOW_SPEC,
    PROSPECT_SPEC,
    STUDENT_SPEC,
    INSTRUCTOR_SPEC,
)


def by_type(aggregate_type: str) -> AggregateSpec:
    """The declaration of ``aggregate_type`` (``"user"``). Raises KeyError for another."""
    for spec in AGGREGATES:
        if spec.aggregate_type == aggregate_type:
            return spec
    raise KeyError(f"no aggregate type {aggregate_type!r}")
