"""The partner aggregate (partner tracking): a partner owns systems, each with one API key
(held only as a SHA-256 hash) and per-event-name JSON Schema structures. Commands, events,
state, decide/evolve and :data:`PARTNER_SPEC` for the generic handler
(``pipeline.domain.handling.handle``). Partners need no uniqueness claims.
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.partners import aggregate, state
from pipeline.domain.partners.aggregate import decide, evolve
from pipeline.domain.partners.commands import PartnerCommand
from pipeline.domain.partners.events import PartnerEvent
from pipeline.domain.partners.state import (
    EventStructure,
    Partner,
    PartnerStatus,
    PartnerSystem,
    SystemStatus,
    UnknownEventPolicy,
    state_from_dict,
    state_to_dict,
)

__all__ = [
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "PARTNER_SPEC",
    "EventStructure",
    "Partner",
    "PartnerCommand",
    "PartnerStatus",
    "PartnerSystem",
    "SystemStatus",
    "UnknownEventPolicy",
    "decide",
    "evolve",
    "from_data",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

PARTNER_SPEC = AggregateSpec.declare(
    "partner", "partners", aggregate, state, PartnerEvent, PartnerCommand
)
EVENT_TYPES, COMMAND_TYPES = PARTNER_SPEC.event_types, PARTNER_SPEC.command_types
to_data, from_data = PARTNER_SPEC.to_data, PARTNER_SPEC.from_data
