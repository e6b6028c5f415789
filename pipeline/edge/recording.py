"""Recording an SDK event: the decision tracking validation makes, wherever it is made.

A decoded :class:`TrackedEvent` becomes the Avro value of its ``TrackingEventRecorded``
(for ``tracking.events``, key = system id), or a :class:`Refusal` with the reasons. The API
decides at the edge for every event it accepts, so what it can record skips the
``tracking.raw`` hop and the validation consumer; what it refuses goes to ``tracking.raw``
for a second look by the validation consumer, which decides again with its own (perhaps
newer) view of the structures and dead-letters what it refuses with the reasons. One
:class:`Recorder`, so both places decide alike, and a record is byte-identical whichever
made it (the event id is uuid5(system, message id), every other field comes from the
event), so the sink's dedup holds across both.

Rules (seed 002, partner tracking), in order:

1. Client times the store does not hold are refused (``time_range_problem``; the API
   refuses them before this, records from before it did reach validation).
2. The system's view (Redis read model of partner events, cached for a couple of seconds):
   unknown system, refused. An event name without a structure: recorded if the system
   accepts unknown names (``schema_valid`` true), else refused.
3. With a structure (one validator per version, ``jsonschema``: the library the command
   side checks structures with, every draft it knows, formats not asserted), ``properties`` are
   checked: valid, recorded; invalid, refused if the structure is ``required``, else
   recorded with ``schema_valid`` false. A structure that cannot be applied refuses.
4. Avro must encode the event (a lone surrogate survives JSON, not Avro's UTF-8).

Structures and the unknown-event policy apply by event name to every Segment call type
alike, and check ``properties``: an identify, group or alias is named after its type (a
system that rejects unknown events needs a structure "identify" to take identify calls),
a page or screen after its name. Traits are stored, not validated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from redis.asyncio import Redis
from referencing.exceptions import Unresolvable

from pipeline.common.cache import ReadThrough
from pipeline.domain.tracking import TrackedEvent, recorded_envelope, time_range_problem
from pipeline.projections.partner_keys.lookups import SYSTEM
from schemas.codec import AvroCodec
from schemas.exceptions import EncodeError


class Structures:
    """system id -> its view (policy, structures), from Redis, cached ``ttl_s`` seconds;
    compiled validators are cached per (system, event name, structure version)."""

    def __init__(
        self,
        redis: Redis,
        *,
        ttl_s: float = 2.0,
        timer: Callable[[], float] = time.monotonic,
        core: Any = None,
    ) -> None:
        self.redis = redis
        self.core = core
        self._native: dict[tuple[str, tuple[Any, ...]], dict[str, Any] | None] = {}
        self._views: ReadThrough[str, dict[str, Any]] = ReadThrough(
            self._load, ttl_s=ttl_s, maxsize=50_000, timer=timer
        )
        self._compiled: dict[tuple[str, str, int], Validator] = {}

    async def view(self, system_id: str) -> dict[str, Any] | None:
        """The system's view, None for an unknown system (cached too)."""
        return await self._views.get(system_id)

    async def _load(self, system_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(SYSTEM.format(system_id=system_id))
        return None if raw is None else orjson.loads(raw)

    def compiled(self, system_id: str, view: dict[str, Any]) -> dict[str, Any] | None:
        """The view's structures for the compiled core: event name -> (its compiled
        validator, required, version), or None when a structure's schema is one the core
        leaves to Python (``streamfold_edge.Fallback``). Compiled once per set of
        structure versions of a system. Requires the core (``self.core``)."""
        versions = tuple(
            sorted((n, s["version"], s["required"]) for n, s in view["structures"].items())
        )
        key = (system_id, versions)
        if key not in self._native:
            try:
                self._native[key] = {
                    name: (self.core.Validator(s["json_schema"]), bool(s["required"]),
                           int(s["version"]))
                    for name, s in view["structures"].items()
                }  # fmt: skip
            except self.core.Fallback:
                self._native[key] = None
        return self._native[key]

    def validator(self, system_id: str, name: str, structure: dict[str, Any]) -> Validator:
        key = (system_id, name, int(structure["version"]))
        if key not in self._compiled:
            schema = orjson.loads(structure["json_schema"])
            self._compiled[key] = validator_for(schema)(schema)
        return self._compiled[key]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event is not recorded. ``kind`` is a metric label (``time_out_of_range``,
    ``structure`` or ``not_encodable``: a small fixed set, never the reasons' text);
    ``reasons`` are for the dead-letter topic and the partner."""

    kind: str
    reasons: list[str]


class Recorder:
    """The decision of the module docstring, for one event at a time."""

    def __init__(self, structures: Structures, codec: AvroCodec, producer_name: str) -> None:
        self.structures = structures
        self.codec = codec
        self.producer_name = producer_name

    async def record(self, tracked: TrackedEvent) -> bytes | Refusal:
        """The single-object Avro value of ``tracked``'s TrackingEventRecorded, or why not.
        Raises what Redis raises when the view is not cached and Redis does not answer."""
        original = tracked.original_timestamp or tracked.timestamp
        out_of_range = time_range_problem(tracked.timestamp, original, tracked.received_at)
        if out_of_range is not None:
            return Refusal("time_out_of_range", [out_of_range])
        view = await self.structures.view(tracked.system_id)
        reasons, schema_valid, version = self.check(tracked, view)
        if reasons:
            return Refusal("structure", reasons)
        try:
            envelope = recorded_envelope(
                tracked,
                producer=self.producer_name,
                schema_valid=schema_valid,
                structure_version=version,
            )
            return self.codec.encode(envelope)
        except EncodeError as exc:
            # one such event used to stop the whole validation consumer (and the process)
            return Refusal("not_encodable", [f"not encodable as Avro: {exc}"[:300]])

    def check(
        self, tracked: TrackedEvent, view: dict[str, Any] | None
    ) -> tuple[list[str], bool, int | None]:
        """(reasons to refuse, schema_valid, structure version) against ``view``."""
        if view is None:
            return [f"unknown system {tracked.system_id}"], False, None
        structure = view["structures"].get(tracked.event)
        if structure is None:
            if view["unknown_events"] == "reject":
                return [f"no structure for event {tracked.event!r}"], False, None
            return [], True, None
        version = structure["version"]
        try:
            validator = self.structures.validator(tracked.system_id, tracked.event, structure)
            error = best_match(validator.iter_errors(tracked.properties))
        except (Unresolvable, RecursionError) as exc:
            # A structure stored before the command side refused these
            # (pipeline/domain/partners/rules.py: _compiles): one event used to stop the
            # validation consumer. Refused with the reason, the event can be replayed once
            # the structure is fixed.
            reason = "refers to itself without end" if isinstance(exc, RecursionError) else exc
            return (
                [f"structure {tracked.event!r} v{version} cannot be applied: {reason}"],
                False,
                version,
            )
        if error is not None:
            if structure["required"]:
                return [f"properties: {error.message}"], False, version
            return [], False, version
        return [], True, version
