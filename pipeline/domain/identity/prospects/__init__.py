"""The prospect aggregate: a person who showed interest, until merged or converted.

A merge of prospect A into B takes three steps, each decided by one aggregate against its
own state, so two merges can never form a cycle however they race:

1. ``MergeProspect`` on A: A must be active; it becomes *merging* and records
   ``ProspectMergeStarted`` with its profile.
2. ``AbsorbProspect`` on B (sent by the process manager, ``reactions.py``): B absorbs A's
   profile (``ProspectAbsorbed``) only if B itself is active, else it records
   ``ProspectMergeRefused``. A merging or merged prospect never absorbs.
3. ``CompleteMerge`` on A: A becomes a tombstone pointing at B (``ProspectMerged``); or
   ``CancelMerge``: A is active again (``ProspectMergeCancelled``).

No cycle: an edge A -> B is only added while B is active, and B is never active again
once it has an outgoing edge of its own (merging, then merged). Merging into a merged
prospect is refused (issue 11). Conversion (``ConvertProspect``) happens once per role and
names the new aggregate's id: :func:`person_id`.

Commands, events, state, decide/evolve and :data:`PROSPECT_SPEC` for the generic handler
(``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.handling import AggregateSpec
from pipeline.domain.identity.prospects import aggregate, state
from pipeline.domain.identity.prospects.aggregate import (
    AGGREGATE_TYPE,
    claims_for,
    claims_held,
    decide,
    evolve,
    parse_role,
    person_id,
)
from pipeline.domain.identity.prospects.commands import (
    AbsorbProspect,
    CancelMerge,
    CompleteMerge,
    ConvertProspect,
    CreateProspect,
    MergeProspect,
    ProspectCommand,
    UndoConversion,
    UpdateProspect,
)
from pipeline.domain.identity.prospects.events import (
    ProspectAbsorbed,
    ProspectConversionUndone,
    ProspectConverted,
    ProspectCreated,
    ProspectEvent,
    ProspectMergeCancelled,
    ProspectMerged,
    ProspectMergeRefused,
    ProspectMergeStarted,
    ProspectUpdated,
)
from pipeline.domain.identity.prospects.state import (
    ConversionRole,
    Prospect,
    ProspectStatus,
    state_from_dict,
    state_to_dict,
)

__all__ = [
    "AGGREGATE_TYPE",
    "COMMAND_TYPES",
    "EVENT_TYPES",
    "PROSPECT_SPEC",
    "AbsorbProspect",
    "CancelMerge",
    "CompleteMerge",
    "ConversionRole",
    "ConvertProspect",
    "CreateProspect",
    "MergeProspect",
    "Prospect",
    "ProspectAbsorbed",
    "ProspectCommand",
    "ProspectConversionUndone",
    "ProspectConverted",
    "ProspectCreated",
    "ProspectEvent",
    "ProspectMergeCancelled",
    "ProspectMergeRefused",
    "ProspectMergeStarted",
    "ProspectMerged",
    "ProspectStatus",
    "ProspectUpdated",
    "UndoConversion",
    "UpdateProspect",
    "claims_for",
    "claims_held",
    "decide",
    "evolve",
    "from_data",
    "parse_role",
    "person_id",
    "state_from_dict",
    "state_to_dict",
    "to_data",
]

PROSPECT_SPEC = AggregateSpec.declare(
    "prospect", "prospects", aggregate, state, ProspectEvent, ProspectCommand
)
EVENT_TYPES, COMMAND_TYPES = PROSPECT_SPEC.event_types, PROSPECT_SPEC.command_types
to_data, from_data = PROSPECT_SPEC.to_data, PROSPECT_SPEC.from_data
