"""Tracking events sent by partner SDKs: parsing one raw SDK event, its JSON form on the
``tracking.raw`` topic, and the ``data`` of the ``TrackingEventRecorded`` Avro event.

Pure and deterministic: the caller supplies ``received_at`` and the event's JSON size. Ids are
UUIDv5 so an SDK retry of the same message yields the same message id and event id everywhere.
Schema validation against the system's event structures happens later (it needs the partner
state); :func:`recorded_data` records its outcome.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pipeline.domain.errors import InvalidValue

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_TEXT_LENGTH",
    "MESSAGE_NAMESPACE",
    "RECORDED_AGGREGATE_TYPE",
    "RECORDED_EVENT_TYPE",
    "RECORDED_SCHEMA_VERSION",
    "TRACKING_EVENT_NAMESPACE",
    "EventRejection",
    "RejectReason",
    "TrackedEvent",
    "canonical_json",
    "event_id_for",
    "parse_sdk_event",
    "recorded_data",
]

MAX_EVENT_BYTES = 32 * 1024  # one event's JSON size limit
MAX_TEXT_LENGTH = 200  # event name, message id, user id, anonymous id

RECORDED_EVENT_TYPE = "TrackingEventRecorded"
RECORDED_SCHEMA_VERSION = 2
# Envelope: aggregate_type "system", aggregate_id = system id, aggregate_version 0 (tracking
# events are not part of an aggregate's history).
RECORDED_AGGREGATE_TYPE = "system"

# Both fixed forever: changing one changes derived ids and breaks deduplication of retries.
MESSAGE_NAMESPACE: uuid.UUID = uuid.UUID("2d0c8f5e-4b7a-5c19-9e3d-8a6f1b2c4d5e")
TRACKING_EVENT_NAMESPACE: uuid.UUID = uuid.UUID("9a1e7c3b-5d2f-5e84-b6a0-7f4c3e2d1b0a")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch numbers above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLIS_THRESHOLD = 1e11


class RejectReason(StrEnum):
    """Why an SDK event was refused before schema validation (values are API contract)."""

    MALFORMED = "malformed"  # not an object, or a field has the wrong type/format
    TOO_LARGE = "too_large"  # its JSON exceeds max_event_bytes
    MISSING_ID = "missing_id"  # neither user_id nor anonymous_id


@dataclass(frozen=True, slots=True)
class EventRejection:
    """A refused SDK event: ``reason`` plus a message safe to return to the SDK."""

    reason: RejectReason
    message: str


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text. Raises ``ValueError`` for
    NaN/Infinity and ``TypeError`` for values JSON cannot hold.
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _aware_utc(field: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field, "must be a timezone-aware datetime")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackedEvent:
    """An accepted SDK event, before schema validation.

    message_id: 1-200 chars, from the SDK or derived (see :func:`parse_sdk_event`).
    event: the event name, stripped, 1-200 chars. user_id / anonymous_id: 1-200 chars or None;
    at least one is set. timestamp: client time, or ``received_at`` when the SDK sent none;
    received_at: server time; both tz-aware UTC. properties / context: JSON objects.
    system_id / partner_id: the authenticated system and its partner.

    Raises ``InvalidValue`` if a datetime is naive or both ids are None.
    """

    message_id: str
    event: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any]
    context: dict[str, Any]
    system_id: str
    partner_id: str

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so every instance holds UTC times.
        object.__setattr__(self, "timestamp", _aware_utc("timestamp", self.timestamp))
        object.__setattr__(self, "received_at", _aware_utc("received_at", self.received_at))
        if not (self.user_id or self.anonymous_id):
            raise InvalidValue("user_id", "user_id or anonymous_id is required")

    @property
    def distinct_id(self) -> str:
        """The id analytics count people by: ``user_id`` when known, else ``anonymous_id``."""
        return self.user_id or self.anonymous_id or ""

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe dict for the ``tracking.raw`` topic; datetimes as ISO-8601 strings."""
        return {
            "message_id": self.message_id,
            "event": self.event,
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "timestamp": self.timestamp.isoformat(),
            "received_at": self.received_at.isoformat(),
            "properties": self.properties,
            "context": self.context,
            "system_id": self.system_id,
            "partner_id": self.partner_id,
        }

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> TrackedEvent:
        """Inverse of :meth:`to_json_dict`. Raises ``InvalidValue(field, ...)`` for a missing
        or mistyped field or a naive/unparseable datetime (a record to dead-letter).
        """
        if not isinstance(d, dict):
            raise InvalidValue("record", "must be a JSON object")

        def get(name: str, types: type | tuple[type, ...]) -> Any:
            if name not in d:
                raise InvalidValue(name, "is missing")
            if not isinstance(d[name], types):
                raise InvalidValue(name, f"has the wrong type {type(d[name]).__name__}")
            return d[name]

        def when(name: str) -> datetime:
            try:
                return datetime.fromisoformat(get(name, str))
            except ValueError as exc:
                raise InvalidValue(name, "is not an ISO-8601 datetime") from exc

        return cls(
            message_id=get("message_id", str),
            event=get("event", str),
            user_id=get("user_id", (str, type(None))),
            anonymous_id=get("anonymous_id", (str, type(None))),
            timestamp=when("timestamp"),
            received_at=when("received_at"),
            properties=get("properties", dict),
            context=get("context", dict),
            system_id=get("system_id", str),
            partner_id=get("partner_id", str),
        )


class _Malformed(Exception):
    def __init__(self, rejection: EventRejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def _reject(reason: RejectReason, message: str) -> _Malformed:
    return _Malformed(EventRejection(reason, message))


def _identity(raw: dict[str, Any], name: str) -> tuple[str | None, bool]:
    # (usable id or None, whether a value was given but is not a usable id).
    value = raw.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, False
    if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH:
        return value, False
    return None, True


def _timestamp(raw: Any, received_at: datetime) -> datetime:
    if raw is None:
        return received_at
    try:
        if isinstance(raw, str):
            parsed = datetime.fromisoformat(raw)  # 3.11+: accepts a "Z" suffix
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            # timedelta arithmetic, not fromtimestamp: exact for integers, host-independent.
            if raw > _MILLIS_THRESHOLD:
                return _EPOCH + timedelta(milliseconds=raw)
            return _EPOCH + timedelta(seconds=raw)
    except (ValueError, OverflowError) as exc:
        # The message does not echo the value: it is returned to the SDK and may be huge.
        message = "timestamp is not a readable ISO-8601 time or epoch number in range"
        raise _reject(RejectReason.MALFORMED, message) from exc
    raise _reject(RejectReason.MALFORMED, "timestamp must be an ISO-8601 string or epoch number")


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _reject(RejectReason.MALFORMED, f"{name} must be an object")
    return dict(value)


def parse_sdk_event(
    raw: Any,
    *,
    system_id: str,
    partner_id: str,
    received_at: datetime,
    raw_size: int,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> TrackedEvent | EventRejection:
    """Turn one SDK event (a parsed JSON value) into a :class:`TrackedEvent`, or say why not.

    raw_size: bytes of this event's JSON, measured by the caller. received_at: tz-aware server
    time.

    Rules: ``raw`` must be an object (MALFORMED) of at most ``max_event_bytes`` (TOO_LARGE)
    holding only JSON values (no NaN/Infinity; MALFORMED). ``event``: non-empty string, at
    most 200 chars after stripping. ``user_id``/``anonymous_id``: absent, null or blank = not
    given; at least one must be a string of at most 200 chars (MISSING_ID); if one is, an
    unusable other (not a string, or too long) is MALFORMED rather than silently dropped.
    ``message_id``: a string of 1-200 chars; absent or null derives a UUIDv5 of this system
    and the canonical JSON of the event (minus ``message_id``), so an SDK retry of the same
    event keeps its id (and two identical id-less events count once).
    ``timestamp``: absent/null = ``received_at``; an ISO-8601 string (naive = UTC, "Z" allowed)
    or epoch number (seconds; milliseconds if > 1e11). ``properties``/``context``: optional
    objects. Other top-level keys are ignored. Raises ``InvalidValue("received_at", ...)`` if
    ``received_at`` is naive (a caller bug, not an SDK error).
    """
    received_at = _aware_utc("received_at", received_at)
    try:
        if not isinstance(raw, dict):
            raise _reject(RejectReason.MALFORMED, "an event must be a JSON object")
        if raw_size > max_event_bytes:
            message = f"event is {raw_size} bytes, more than the {max_event_bytes}-byte limit"
            raise _reject(RejectReason.TOO_LARGE, message)
        try:
            # Without message_id, so a null message_id derives the same id as an absent one.
            canonical = canonical_json({k: v for k, v in raw.items() if k != "message_id"})
        except (TypeError, ValueError, RecursionError) as exc:
            raise _reject(RejectReason.MALFORMED, f"event is not plain JSON: {exc}") from exc
        name = raw.get("event")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_TEXT_LENGTH:
            raise _reject(RejectReason.MALFORMED, "event must be a string of 1-200 characters")
        user_id, bad_user_id = _identity(raw, "user_id")
        anonymous_id, bad_anonymous_id = _identity(raw, "anonymous_id")
        if user_id is None and anonymous_id is None:
            message = "user_id or anonymous_id (a string of 1-200 characters) is required"
            raise _reject(RejectReason.MISSING_ID, message)
        if bad_user_id or bad_anonymous_id:
            name = "user_id" if bad_user_id else "anonymous_id"
            raise _reject(RejectReason.MALFORMED, f"{name} must be a string of 1-200 characters")
        message_id = raw.get("message_id")
        if message_id is None:
            message_id = str(uuid.uuid5(MESSAGE_NAMESPACE, f"{system_id}\n{canonical}"))
        elif not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_TEXT_LENGTH:
            raise _reject(RejectReason.MALFORMED, "message_id must be a string of 1-200 characters")
        return TrackedEvent(
            message_id=message_id,
            event=name.strip(),
            user_id=user_id,
            anonymous_id=anonymous_id,
            timestamp=_timestamp(raw.get("timestamp"), received_at),
            received_at=received_at,
            properties=_object(raw, "properties"),
            context=_object(raw, "context"),
            system_id=system_id,
            partner_id=partner_id,
        )
    except _Malformed as exc:
        return exc.rejection


def event_id_for(system_id: str, message_id: str) -> str:
    """The ``TrackingEventRecorded`` event id: UUIDv5 of (system, message), so one message is
    one event everywhere, however often it is sent or replayed.
    """
    return str(uuid.uuid5(TRACKING_EVENT_NAMESPACE, f"{system_id}/{message_id}"))


def recorded_data(
    e: TrackedEvent, *, schema_valid: bool, structure_version: int | None
) -> dict[str, Any]:
    """The ``data`` dict of ``TrackingEventRecorded`` v1, field for field in Avro order.

    schema_valid: whether ``properties`` conform to the structure (True when none applies).
    structure_version: the structure version checked against, None if none. Datetimes stay
    tz-aware datetimes (Avro timestamp-micros); properties/context become canonical JSON text.
    """
    return {
        "partner_id": e.partner_id,
        "system_id": e.system_id,
        "event": e.event,
        "message_id": e.message_id,
        "user_id": e.user_id,
        "anonymous_id": e.anonymous_id,
        "timestamp": e.timestamp,
        "received_at": e.received_at,
        "properties": json.dumps(e.properties, sort_keys=True, separators=(",", ":")),
        "context": json.dumps(e.context, sort_keys=True, separators=(",", ":")),
        "schema_valid": schema_valid,
        "structure_version": structure_version,
    }
