"""The chirp aggregate: one short post by one user, posted once and possibly deleted.

Aggregate id = chirp id (derived from the PostChirp command id, so a resubmitted post is
a duplicate, not a second chirp). Time comes from the envelope (``occurred_at``); the
decide rules are pure and deterministic. That the author exists and is active is checked
where the acting user is authenticated (the API, against the users read model: see
``api/routes/social.py``). Commands, events, state, decide/evolve and :data:`CHIRP_SPEC`
for the generic handler (``pipeline.domain.handling.handle``).
"""

from __future__ import annotations

from pipeline.domain.chirps import aggregate, state
from pipeline.domain.chirps.aggregate import (
    AGGREGATE_TYPE,
    TEXT_MAX_CODE_POINTS,
    chirp_text,
    decide,
    evolve,
)
from pipeline.domain.chirps.commands import ChirpCommand, DeleteChirp, PostChirp
from pipeline.domain.chirps.events import ChirpEvent, ChirpPosted
from pipeline.domain.handling import AggregateSpec

__all__ = [
    "AGGREGATE_TYPE",
    "CHIRP_SPEC",
    "EVENT_TYPES",
    "TEXT_MAX_CODE_POINTS",
    "ChirpPosted",
    "DeleteChirp",
    "PostChirp",
    "chirp_text",
    "decide",
    "evolve",
    "from_data",
]

CHIRP_SPEC = AggregateSpec.declare("chirp", "chirps", aggregate, state, ChirpEvent, ChirpCommand)
EVENT_TYPES, from_data = CHIRP_SPEC.event_types, CHIRP_SPEC.from_data
