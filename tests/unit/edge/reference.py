"""The Python path of one ingestion request, from the parsed body to what is produced: the
reference that ``streamfold_edge`` (``pipeline/edge/native``) must reproduce outcome for
outcome, byte for byte.

``python_outcomes`` runs what ``api/routes/ingest.py`` runs (``jsontext.loads`` ->
``read_request`` -> ``decode_events`` -> ``Recorder.record`` / ``TrackedEvent.to_json``)
for a system whose view has the given structures, and returns the same tuples as
``streamfold_edge.Request.decode``. Structures are validated by the production
``Structures.validator`` (Python's ``jsonschema``: ``validator_for(schema)(schema)``,
formats not asserted); only the view comes from memory instead of Redis.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jsonschema.validators import validator_for

# Every import of project code, in one block (modules move: repoint here).
from pipeline.domain import jsontext
from pipeline.domain.errors import InvalidValue
from pipeline.domain.tracking import CallType, EventRejection, decode_events, read_request
from pipeline.edge.recording import Recorder, Structures
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistry

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CODEC = AvroCodec(SchemaRegistry.load())
FINGERPRINT: bytes = CODEC.registry.fingerprint("TrackingEventRecorded", 2)
_LOOP = asyncio.new_event_loop()


def python_validator(schema_json: str) -> Any:
    """``is_valid`` of Python's jsonschema for a structure's schema text, as
    ``Structures.validator`` compiles it."""
    schema = json.loads(schema_json)
    return validator_for(schema)(schema).is_valid


@dataclass(frozen=True)
class Structure:
    """One event name's structure: its schema text, whether it is required, its version."""

    schema_json: str
    required: bool
    version: int


class _View(Structures):
    """The production ``Structures`` of one system whose view (policy, structures) is
    given instead of read from Redis; validators are its own, compiled per instance."""

    def __init__(self, structures: dict[str, Structure], reject_unknown: bool) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no Redis: view() is overridden
        self._view = {
            "unknown_events": "reject" if reject_unknown else "accept",
            "structures": {
                name: {"json_schema": s.schema_json, "required": s.required, "version": s.version}
                for name, s in structures.items()
            },
        }

    async def view(self, system_id: str) -> dict[str, Any]:
        return self._view


class RequestRefused(Exception):
    """The Python path refuses the whole request (not JSON, not a batch): a 400."""


def python_outcomes(
    body: bytes,
    call_type: str | None,
    *,
    system_id: str,
    partner_id: str,
    received_at_us: int,
    producer: str,
    max_event_bytes: int,
    structures: dict[str, Structure],
    reject_unknown: bool,
) -> tuple[str | None, int, list[tuple[Any, ...]]]:
    """(write_key, event count, outcomes) of the Python path; raises ``RequestRefused``
    where it answers the request with an error."""
    try:
        parsed = jsontext.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RequestRefused(str(exc)) from exc
    try:
        request = read_request(parsed, CallType(call_type) if call_type else None)
    except InvalidValue as exc:
        raise RequestRefused(exc.message) from exc
    received_at = EPOCH + timedelta(microseconds=received_at_us)
    decoded = decode_events(
        request,
        system_id=system_id,
        partner_id=partner_id,
        received_at=received_at,
        max_event_bytes=max_event_bytes,
    )
    recorder = Recorder(_View(structures, reject_unknown), CODEC, producer)
    outcomes: list[tuple[Any, ...]] = []
    for raw, result in zip(request.events, decoded, strict=True):
        if isinstance(result, EventRejection):
            outcomes.append(("rejected", str(result.reason), result.message, raw))
            continue
        recorded = _LOOP.run_until_complete(recorder.record(result))
        if isinstance(recorded, bytes):
            outcomes.append(("recorded", result.message_id, recorded))
        else:
            outcomes.append(("raw", result.message_id, result.to_json()))
    return request.write_key, len(request.events), outcomes


def python_batch_body(outcomes: list[tuple[Any, ...]]) -> bytes:
    """The ``/v1/batch`` 200 body ``api.routes.ingest.batch`` writes for these outcomes."""
    results: list[dict[str, Any]] = []
    for index, o in enumerate(outcomes):
        if o[0] == "rejected":
            results.append({"index": index, "status": "rejected", "reason": o[1], "message": o[2]})
        else:
            results.append({"index": index, "message_id": o[1], "status": "accepted"})
    accepted = sum(1 for o in outcomes if o[0] != "rejected")
    body = {
        "success": True,
        "accepted": accepted,
        "rejected": len(results) - accepted,
        "results": results,
    }
    return jsontext.dumps(body)


def typed(value: Any) -> Any:
    """``value`` with its types spelled out, for equality that tells ``1`` from ``1.0`` and
    ``True``, ``0.0`` from ``-0.0``, and a dict's key order."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)
