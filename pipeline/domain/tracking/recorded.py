"""The recorded tracking event: ``TrackingEventRecorded``, the Avro event that
``tracking.events`` holds for each accepted SDK event (``schemas/avro/tracking``), and its
deterministic envelope. Pure: no clock, no I/O.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.domain import jsontext
from pipeline.domain.tracking.wire import TrackedEvent
from schemas.envelope import Envelope, sdk_actor
from schemas.uuids import uuid5_text

__all__ = [
    "RECORDED_AGGREGATE_TYPE",
    "RECORDED_EVENT_TYPE",
    "RECORDED_SCHEMA_VERSION",
    "TRACKING_EVENT_NAMESPACE",
    "event_id_for",
    "recorded_data",
    "recorded_envelope",
]

RECORDED_EVENT_TYPE = "TrackingEventRecorded"
RECORDED_SCHEMA_VERSION = 2
# Envelope: aggregate_type "system", aggregate_id = system id, aggregate_version 0 (tracking
# events are not part of an aggregate's history).
RECORDED_AGGREGATE_TYPE = "system"
# Fixed forever: changing it changes event ids and breaks deduplication of retries.
TRACKING_EVENT_NAMESPACE: uuid.UUID = uuid.UUID("9a1e7c3b-5d2f-5e84-b6a0-7f4c3e2d1b0a")


def event_id_for(system_id: str, message_id: str) -> str:
    """The ``TrackingEventRecorded`` event id: UUIDv5 of (system, message), so one message is
    one event everywhere, however often it is sent or replayed.
    """
    return uuid5_text(TRACKING_EVENT_NAMESPACE, f"{system_id}/{message_id}")


def _json_text(value: dict[str, Any]) -> str:
    # UTF-8 as sent (records before 2026-11-25 escaped non-ASCII as \uXXXX: both read the
    # same through ClickHouse's JSON functions)
    return jsontext.dumps(value, sort_keys=True).decode()


def recorded_data(
    e: TrackedEvent, *, schema_valid: bool, structure_version: int | None
) -> dict[str, Any]:
    """The ``data`` dict of ``TrackingEventRecorded`` v2, field for field in Avro order.

    schema_valid: whether ``properties`` conform to the structure (True when none applies).
    structure_version: the structure version checked against, None if none. Datetimes stay
    tz-aware datetimes (Avro timestamp-micros); properties/traits/context become compact
    JSON text with sorted keys, non-ASCII as UTF-8.
    """
    return {
        "partner_id": e.partner_id,
        "system_id": e.system_id,
        "type": str(e.type),
        "event": e.event,
        "message_id": e.message_id,
        "user_id": e.user_id,
        "anonymous_id": e.anonymous_id,
        "group_id": e.group_id,
        "previous_id": e.previous_id,
        "category": e.category,
        "timestamp": e.timestamp,
        "original_timestamp": e.original_timestamp,
        "received_at": e.received_at,
        "properties": _json_text(e.properties),
        "traits": _json_text(e.traits),
        "context": _json_text(e.context),
        "schema_valid": schema_valid,
        "structure_version": structure_version,
    }


def recorded_envelope(
    e: TrackedEvent, *, producer: str, schema_valid: bool, structure_version: int | None
) -> Envelope:
    """``e``'s ``TrackingEventRecorded`` envelope: event id uuid5(system, message id),
    occurred at the event's (skew-corrected) time, actor the system's SDK; ``data`` as
    :func:`recorded_data` makes it. Deterministic: the same event, the same envelope,
    whichever process records it."""
    return Envelope(
        event_id=event_id_for(e.system_id, e.message_id),
        event_type=RECORDED_EVENT_TYPE,
        schema_version=RECORDED_SCHEMA_VERSION,
        aggregate_type=RECORDED_AGGREGATE_TYPE,
        aggregate_id=e.system_id,
        aggregate_version=0,
        occurred_at=e.timestamp,
        producer=producer,
        correlation_id=e.message_id,
        causation_id=e.message_id,
        actor=sdk_actor(e.system_id),
        data=recorded_data(e, schema_valid=schema_valid, structure_version=structure_version),
    )
