"""Tracking events as partner SDKs send them: an ingestion request body, one raw SDK event,
the decoded event (:class:`TrackedEvent`) and its JSON form on the ``tracking.raw`` topic,
and what a refused event becomes on ``tracking.dlq``. What is recorded of an accepted one
is ``recorded.py``.

Two wire shapes, one decoder. Ours is snake_case (``user_id``, ``anonymous_id``,
``message_id``; every event a track call). Segment's HTTP Tracking API, which partners'
existing SDKs speak, is camelCase (``userId``, ``anonymousId``, ``messageId``, ``groupId``,
``previousId``, ``sentAt``), has a ``type`` per call (track, identify, page, screen, group,
alias), and a batch may carry ``writeKey``, ``sentAt`` and ``context`` for all its calls.
Verified against segment-analytics-python 2.4 (``client.py`` builds the calls with those
keys, ``request.py`` posts ``{"batch", "sentAt", "writeKey"}`` to ``/v1/batch``). Every
field is read under either spelling by the same code; nothing branches on the shape.

Pure and deterministic: the caller supplies ``received_at``. Ids are UUIDv5 so an SDK retry
of the same message yields the same message id and event id everywhere. Schema validation
against the system's event structures happens later (it needs the partner state);
``recorded.recorded_data`` records its outcome.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pipeline.domain import jsontext
from pipeline.domain.errors import InvalidValue
from schemas.uuids import uuid5_text

__all__ = [
    "EARLIEST_CLIENT_TIME",
    "EARLIEST_TIMESTAMP",
    "LATEST_CLIENT_TIME",
    "MAX_EVENT_BYTES",
    "MAX_FUTURE_SKEW",
    "MAX_TEXT_LENGTH",
    "MESSAGE_NAMESPACE",
    "CallType",
    "EventRejection",
    "RejectReason",
    "SdkRequest",
    "TrackedEvent",
    "canonical_json",
    "decode_events",
    "parse_sdk_event",
    "read_request",
    "rejection_record",
    "time_range_problem",
]

MAX_EVENT_BYTES = 32 * 1024  # one event's JSON size limit
MAX_TEXT_LENGTH = 200  # event name, ids, page name and category


# Both fixed forever: changing one changes derived ids and breaks deduplication of retries.
MESSAGE_NAMESPACE: uuid.UUID = uuid.UUID("2d0c8f5e-4b7a-5c19-9e3d-8a6f1b2c4d5e")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch numbers above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLIS_THRESHOLD = 1e11

# What the store holds of an event's time (see :func:`time_range_problem` for the sources).
EARLIEST_TIMESTAMP = _EPOCH
MAX_FUTURE_SKEW = timedelta(days=1)
EARLIEST_CLIENT_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_CLIENT_TIME = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

# Segment's spelling of our snake_case fields (HTTP Tracking API, "Common fields").
_CAMEL = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "group_id": "groupId",
    "previous_id": "previousId",
    "sent_at": "sentAt",
}
# Not part of what a derived message id is made of: the id itself, and what differs between
# two sends of one call (an SDK stamps sentAt per attempt; writeKey changes with a rotation).
_NOT_CONTENT = frozenset({"message_id", "messageId", "sent_at", "sentAt", "writeKey"})


class CallType(StrEnum):
    """The Segment spec's call types; the value is stored as the event's ``type``."""

    TRACK = "track"
    IDENTIFY = "identify"
    PAGE = "page"
    SCREEN = "screen"
    GROUP = "group"
    ALIAS = "alias"


class RejectReason(StrEnum):
    """Why an SDK event was refused before schema validation (values are API contract)."""

    MALFORMED = "malformed"  # not an object, or a field has the wrong type/format
    TOO_LARGE = "too_large"  # its JSON exceeds max_event_bytes
    MISSING_ID = "missing_id"  # neither user_id nor anonymous_id
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"  # see time_range_problem


@dataclass(frozen=True, slots=True)
class EventRejection:
    """A refused SDK event: ``reason`` plus a message safe to return to the SDK."""

    reason: RejectReason
    message: str


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal values give equal text. Raises ``ValueError`` for
    NaN/Infinity and ``TypeError`` for values JSON cannot hold.

    The standard library's text (``\\uXXXX`` escapes, Python's float ``repr``), not
    orjson's, on purpose: derived message ids are uuid5 of it, so it is fixed forever
    (another text would give an SDK's retry of an id-less event a new id, stored twice).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _aware_utc(name: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(name, "must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _call_type(value: Any) -> CallType:
    try:
        return CallType(value)
    except (ValueError, TypeError) as exc:
        raise InvalidValue("type", f"must be one of {', '.join(CallType)}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackedEvent:
    """An accepted SDK event, before schema validation.

    type: the call type. event: the name analytics group by, stripped, 1-200 chars: a
    track's ``event``, a page's or screen's ``name`` (the type when it has none), the type
    itself for identify, group and alias. message_id: 1-200 chars, from the SDK or derived
    (see :func:`parse_sdk_event`). user_id / anonymous_id: 1-200 chars or None; at least one
    is set. group_id (group calls), previous_id (alias calls), category (page/screen):
    1-200 chars or None.
    timestamp: when it happened, skew-corrected when the SDK sent ``sentAt``;
    original_timestamp: the client's own time as sent (default: ``timestamp``); both
    ``received_at`` when the SDK sent no time. received_at: server time. All tz-aware UTC.
    properties / traits / context: JSON objects. system_id / partner_id: the authenticated
    system and its partner.

    Raises ``InvalidValue`` if a datetime is naive, ``type`` is unknown or both ids are None.
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
    type: CallType = CallType.TRACK
    original_timestamp: datetime | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    previous_id: str | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so every instance holds UTC times.
        timestamp = _aware_utc("timestamp", self.timestamp)
        original = timestamp if self.original_timestamp is None else self.original_timestamp
        object.__setattr__(self, "timestamp", timestamp)
        object.__setattr__(self, "original_timestamp", _aware_utc("original_timestamp", original))
        object.__setattr__(self, "received_at", _aware_utc("received_at", self.received_at))
        if not isinstance(self.type, CallType):  # read back from JSON: a str
            object.__setattr__(self, "type", _call_type(self.type))
        if not (self.user_id or self.anonymous_id):
            raise InvalidValue("user_id", "user_id or anonymous_id is required")

    @property
    def distinct_id(self) -> str:
        """The id analytics count people by: ``user_id`` when known, else ``anonymous_id``."""
        return self.user_id or self.anonymous_id or ""

    def to_json(self) -> bytes:
        """The ``tracking.raw`` record: :meth:`to_json_dict` as compact UTF-8 JSON."""
        return jsontext.dumps(self.to_json_dict())

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-safe dict for the ``tracking.raw`` topic; datetimes as ISO-8601 strings."""
        original = self.original_timestamp or self.timestamp  # always set by __post_init__
        return {
            "message_id": self.message_id,
            "type": str(self.type),
            "event": self.event,
            "user_id": self.user_id,
            "anonymous_id": self.anonymous_id,
            "group_id": self.group_id,
            "previous_id": self.previous_id,
            "category": self.category,
            "timestamp": self.timestamp.isoformat(),
            "original_timestamp": original.isoformat(),
            "received_at": self.received_at.isoformat(),
            "properties": self.properties,
            "traits": self.traits,
            "context": self.context,
            "system_id": self.system_id,
            "partner_id": self.partner_id,
        }

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> TrackedEvent:
        """Inverse of :meth:`to_json_dict`. Raises ``InvalidValue(field, ...)`` for a missing
        or mistyped field or a naive/unparseable datetime (a record to dead-letter). Records
        written before calls had a type lack ``type``, ``original_timestamp``, ``traits``,
        ``group_id``, ``previous_id`` and ``category``: they read as track calls.
        """
        if not isinstance(d, dict):
            raise InvalidValue("record", "must be a JSON object")

        def get(name: str, types: type | tuple[type, ...], default: Any = ...) -> Any:
            if name not in d:
                if default is not ...:
                    return default
                raise InvalidValue(name, "is missing")
            if not isinstance(d[name], types):
                raise InvalidValue(name, f"has the wrong type {type(d[name]).__name__}")
            return d[name]

        def when(name: str, default: Any = ...) -> datetime | None:
            text = get(name, str, default)
            try:
                return None if text is None else datetime.fromisoformat(text)
            except ValueError as exc:
                raise InvalidValue(name, "is not an ISO-8601 datetime") from exc

        optional_text = (str, type(None))
        return cls(
            message_id=get("message_id", str),
            type=get("type", str, CallType.TRACK),
            event=get("event", str),
            user_id=get("user_id", optional_text),
            anonymous_id=get("anonymous_id", optional_text),
            group_id=get("group_id", optional_text, None),
            previous_id=get("previous_id", optional_text, None),
            category=get("category", optional_text, None),
            timestamp=when("timestamp"),  # type: ignore[arg-type]
            original_timestamp=when("original_timestamp", None),
            received_at=when("received_at"),  # type: ignore[arg-type]
            properties=get("properties", dict),
            traits=get("traits", dict, {}),
            context=get("context", dict),
            system_id=get("system_id", str),
            partner_id=get("partner_id", str),
        )


@dataclass(frozen=True, slots=True)
class SdkRequest:
    """An ingestion request body split into its events and what covers them all.

    events: the raw events (parsed JSON values, unchecked). write_key: the body's
    ``writeKey`` (Segment's key-in-body authentication), None if absent or not a string.
    sent_at: the batch's ``sentAt`` as sent, None if absent. context: the batch's
    ``context``, merged under each event's own. call_type: the type the route sets
    (``/v1/identify``), None where each event names its own (``/v1/batch``).
    """

    events: list[Any]
    write_key: str | None = None
    sent_at: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    call_type: CallType | None = None


def _write_key(body: Any) -> str | None:
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key else None


def read_request(body: Any, call_type: CallType | None = None) -> SdkRequest:
    """Split a parsed request body into its events.

    call_type None (``/v1/batch``): ``{"batch": [events], "writeKey"?, "sentAt"?,
    "context"?}`` (Segment's batch; ``sent_at`` is read too) or a bare JSON array. Otherwise
    (``/v1/track``, ``/v1/identify``, ...): the body is one event of that type, carrying its
    own ``writeKey``/``sentAt``. Raises ``InvalidValue("batch" | "context", ...)`` for a
    body of neither shape: the whole request is refused.
    """
    if call_type is not None:
        return SdkRequest([body], write_key=_write_key(body), call_type=call_type)
    if isinstance(body, list):
        return SdkRequest(body)
    events = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise InvalidValue("batch", 'expected {"batch": [events]} or a JSON array')
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidValue("context", "a batch's context must be an object")
    sent_at = body.get("sentAt", body.get("sent_at"))
    return SdkRequest(events, write_key=_write_key(body), sent_at=sent_at, context=context or {})


def decode_events(
    request: SdkRequest,
    *,
    system_id: str,
    partner_id: str,
    received_at: datetime,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> list[TrackedEvent | EventRejection]:
    """Every event of ``request`` through :func:`parse_sdk_event`, in order; an event's size
    is that of its compact UTF-8 JSON, and one that has none (``NaN``, ``Infinity``, a lone
    surrogate: see :mod:`pipeline.domain.jsontext`) is MALFORMED.
    """
    results: list[TrackedEvent | EventRejection] = []
    for raw in request.events:
        try:
            size = len(jsontext.dumps(raw))
        except (TypeError, ValueError, RecursionError):
            results.append(EventRejection(RejectReason.MALFORMED, "event is not plain JSON"))
            continue
        results.append(
            parse_sdk_event(
                raw,
                system_id=system_id,
                partner_id=partner_id,
                received_at=received_at,
                raw_size=size,
                max_event_bytes=max_event_bytes,
                sent_at=request.sent_at,
                context=request.context,
                call_type=request.call_type,
            )
        )
    return results


class _Malformed(Exception):
    def __init__(self, rejection: EventRejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def _reject(reason: RejectReason, message: str) -> _Malformed:
    return _Malformed(EventRejection(reason, message))


def _field(raw: dict[str, Any], name: str) -> Any:
    """``raw[name]`` or Segment's camelCase spelling of it; both given and different is
    MALFORMED (which one the SDK meant is unknowable)."""
    value, camel = raw.get(name), raw.get(_CAMEL[name])
    if value is None:
        return camel
    if camel is not None and camel != value:
        raise _reject(RejectReason.MALFORMED, f"{name} and {_CAMEL[name]} differ")
    return value


def _text(value: Any, name: str) -> str | None:
    """None for absent, null or blank; else it must be a string of at most 200 chars."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH:
        return value
    raise _reject(RejectReason.MALFORMED, f"{name} must be a string of 1-200 characters")


def _identity(value: Any) -> tuple[str | None, bool]:
    # (usable id or None, whether a value was given but is not a usable id).
    try:
        return _text(value, ""), False
    except _Malformed:
        return None, True


def _identities(raw: dict[str, Any]) -> tuple[str | None, str | None]:
    user_id, bad_user_id = _identity(_field(raw, "user_id"))
    anonymous_id, bad_anonymous_id = _identity(_field(raw, "anonymous_id"))
    if user_id is None and anonymous_id is None:
        message = "user_id or anonymous_id (a string of 1-200 characters) is required"
        raise _reject(RejectReason.MISSING_ID, message)
    if bad_user_id or bad_anonymous_id:
        # One usable id does not excuse an unusable other: it is not silently dropped.
        name = "user_id" if bad_user_id else "anonymous_id"
        raise _reject(RejectReason.MALFORMED, f"{name} must be a string of 1-200 characters")
    return user_id, anonymous_id


def _type_of(raw: dict[str, Any], route_type: CallType | None) -> CallType:
    given = raw.get("type")
    if given is None:
        return route_type or CallType.TRACK
    try:
        call_type = CallType(given)
    except (ValueError, TypeError) as exc:
        message = f"type must be one of {', '.join(CallType)}"
        raise _reject(RejectReason.MALFORMED, message) from exc
    if route_type is not None and call_type is not route_type:
        message = f"a {call_type} call sent to the {route_type} route"
        raise _reject(RejectReason.MALFORMED, message)
    return call_type


def _event_name(raw: dict[str, Any], call_type: CallType) -> str:
    if call_type is CallType.TRACK:
        name = raw.get("event")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_TEXT_LENGTH:
            raise _reject(RejectReason.MALFORMED, "event must be a string of 1-200 characters")
        return name.strip()
    if call_type in (CallType.PAGE, CallType.SCREEN):
        name = _text(raw.get("name"), "name")
        return call_type.value if name is None else name.strip()
    return call_type.value


def _require(value: str | None, name: str, call_type: CallType) -> None:
    if value is None:
        message = f"a {call_type} call needs {name} (a string of 1-200 characters)"
        raise _reject(RejectReason.MALFORMED, message)


def _instant(raw: Any) -> datetime | None:
    if raw is None:
        return None
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


def _times(
    raw: dict[str, Any], batch_sent_at: Any, received_at: datetime
) -> tuple[datetime, datetime]:
    """(timestamp, original_timestamp).

    Segment spec, "Timestamps": timestamp = receivedAt - (sentAt - originalTimestamp), the
    client's clock skew taken out, since sentAt and receivedAt are the same moment on two
    clocks. An event's own sentAt wins over its batch's (analytics.js stamps each event; the
    Python SDK stamps the batch).
    """
    client = _instant(raw.get("timestamp"))
    if client is None:
        return received_at, received_at
    try:
        own = _field(raw, "sent_at")
        sent = _instant(batch_sent_at if own is None else own)
    except _Malformed:
        # sentAt serves the correction only: an unreadable one costs the correction, not the
        # event, which keeps the client's time.
        sent = None
    if sent is None:
        return client, client
    try:
        return received_at - (sent - client), client
    except OverflowError as exc:
        message = "timestamp and sentAt are too far apart to correct the clock skew"
        raise _reject(RejectReason.MALFORMED, message) from exc


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_range_problem(
    timestamp: datetime, original_timestamp: datetime, received_at: datetime
) -> str | None:
    """Why an event's times cannot be stored as they are, or None if they can. A message
    safe to return to the SDK: it names the time refused and the accepted range.

    All three tz-aware. Rules, both bounds inclusive:

    - ``timestamp`` (the skew-corrected time analytics use):
      ``EARLIEST_TIMESTAMP`` (1970-01-01T00:00:00Z) to ``received_at + MAX_FUTURE_SKEW``
      (1 day). The lower bound is what the rollups hold: ``tracking_events`` is
      partitioned by ``toYYYYMM(timestamp)`` and ``tracking_minute`` groups by
      ``toStartOfMinute(timestamp)``, which returns a ``DateTime`` (UInt32 seconds since
      the Unix epoch, 1970-01-01 to 2106-02-07): a year-1 or year-9999 event landed there
      as 1970 or 2106. The upper bound leaves a day for clocks and time zones gone wrong
      (the correction by ``sentAt`` takes out a skewed clock when the SDK sends one); an
      event dated further ahead blanked the dashboard's last-24-hours window. The bounds
      depend only on the event (``received_at`` is stamped once, at ingestion), so the
      API, validation and the sink, even replaying old records, decide alike.
    - ``original_timestamp`` (the client's own clock reading, kept beside it):
      ``EARLIEST_CLIENT_TIME`` (1900-01-01) to ``LATEST_CLIENT_TIME`` (2299-12-31
      23:59:59.999), the range ClickHouse documents for ``DateTime64`` (chdb 26.9 stores
      wider; servers of other versions do not), so it is stored as sent on any server.
    """
    latest = received_at + MAX_FUTURE_SKEW
    if not EARLIEST_TIMESTAMP <= timestamp <= latest:
        return (
            f"timestamp {_iso(timestamp)} is outside the accepted range "
            f"{_iso(EARLIEST_TIMESTAMP)} to {_iso(latest)} (received time + 1 day)"
        )
    if not EARLIEST_CLIENT_TIME <= original_timestamp <= LATEST_CLIENT_TIME:
        return (
            f"the client's timestamp {_iso(original_timestamp)} is outside the accepted "
            f"range {_iso(EARLIEST_CLIENT_TIME)} to {_iso(LATEST_CLIENT_TIME)}"
        )
    return None


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _reject(RejectReason.MALFORMED, f"{name} must be an object")
    return dict(value)


def _message_id(raw: dict[str, Any], system_id: str) -> str:
    message_id = _field(raw, "message_id")
    if message_id is None:
        # only here: SDKs send their own ids, and canonical JSON costs a second encoding
        try:
            canonical = canonical_json({k: v for k, v in raw.items() if k not in _NOT_CONTENT})
        except (TypeError, ValueError, RecursionError) as exc:
            raise _reject(RejectReason.MALFORMED, f"event is not plain JSON: {exc}") from exc
        return uuid5_text(MESSAGE_NAMESPACE, f"{system_id}\n{canonical}")
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_TEXT_LENGTH:
        raise _reject(RejectReason.MALFORMED, "message_id must be a string of 1-200 characters")
    return message_id


def parse_sdk_event(
    raw: Any,
    *,
    system_id: str,
    partner_id: str,
    received_at: datetime,
    raw_size: int,
    max_event_bytes: int = MAX_EVENT_BYTES,
    sent_at: Any = None,
    context: dict[str, Any] | None = None,
    call_type: CallType | None = None,
) -> TrackedEvent | EventRejection:
    """Turn one SDK event (a parsed JSON value) into a :class:`TrackedEvent`, or say why not.

    raw: a value parsed from JSON; raw_size: bytes of its compact JSON, measured by the
    caller (:func:`decode_events` refuses an event that has none). received_at: tz-aware server
    time. sent_at / context: the batch's ``sentAt`` and ``context`` (see :class:`SdkRequest`).
    call_type: the type the route sets; None = the event's own ``type``, track if none.

    Fields are read in our snake_case or Segment's camelCase (``userId``, ``anonymousId``,
    ``messageId``, ``groupId``, ``previousId``, ``sentAt``); both spellings with different
    values is MALFORMED. Rules: ``raw`` must be an object (MALFORMED) of at most
    ``max_event_bytes`` (TOO_LARGE).
    ``type``: one of :class:`CallType`, and the route's if it sets one (MALFORMED).
    Event name (see :class:`TrackedEvent`): a track's ``event`` is a non-empty string of at
    most 200 chars after stripping; a page's/screen's ``name`` is optional.
    ``user_id``/``anonymous_id``: absent, null or blank = not given; at least one must be a
    string of at most 200 chars (MISSING_ID); if one is, an unusable other is MALFORMED
    rather than silently dropped. ``group_id`` (required for group), ``previous_id``
    (required for alias), ``category``: strings of 1-200 chars (MALFORMED).
    ``message_id``: a string of 1-200 chars; absent or null derives a UUIDv5 of this system
    and the canonical JSON of the event without its id, ``sentAt`` and ``writeKey``, so an
    SDK retry keeps its id (and two identical id-less events count once).
    ``timestamp``: absent/null = ``received_at``; an ISO-8601 string (naive = UTC, "Z"
    allowed) or epoch number (seconds; milliseconds if > 1e11); corrected for clock skew by
    ``sentAt`` (the event's, else the batch's; unreadable = no correction); the times must
    be ones the store holds (TIMESTAMP_OUT_OF_RANGE, see :func:`time_range_problem`).
    ``properties``/``traits``/``context``: optional objects; the batch's context is merged
    under the event's own. Other keys (``integrations``, ...) are ignored. Raises
    ``InvalidValue("received_at", ...)`` if ``received_at`` is naive (a caller bug).
    """
    received_at = _aware_utc("received_at", received_at)
    try:
        if not isinstance(raw, dict):
            raise _reject(RejectReason.MALFORMED, "an event must be a JSON object")
        if raw_size > max_event_bytes:
            message = f"event is {raw_size} bytes, more than the {max_event_bytes}-byte limit"
            raise _reject(RejectReason.TOO_LARGE, message)
        kind = _type_of(raw, call_type)
        name = _event_name(raw, kind)
        user_id, anonymous_id = _identities(raw)
        group_id = _text(_field(raw, "group_id"), "group_id")
        previous_id = _text(_field(raw, "previous_id"), "previous_id")
        if kind is CallType.GROUP:
            _require(group_id, "group_id", kind)
        if kind is CallType.ALIAS:
            _require(previous_id, "previous_id", kind)
        message_id = _message_id(raw, system_id)
        timestamp, original_timestamp = _times(raw, sent_at, received_at)
        out_of_range = time_range_problem(timestamp, original_timestamp, received_at)
        if out_of_range is not None:
            raise _reject(RejectReason.TIMESTAMP_OUT_OF_RANGE, out_of_range)
        own_context = _object(raw, "context")
        return TrackedEvent(
            message_id=message_id,
            type=kind,
            event=name,
            user_id=user_id,
            anonymous_id=anonymous_id,
            group_id=group_id,
            previous_id=previous_id,
            category=_text(raw.get("category"), "category"),
            timestamp=timestamp,
            original_timestamp=original_timestamp,
            received_at=received_at,
            properties=_object(raw, "properties"),
            traits=_object(raw, "traits"),
            context={**context, **own_context} if context else own_context,
            system_id=system_id,
            partner_id=partner_id,
        )
    except _Malformed as exc:
        return exc.rejection


def rejection_record(
    raw: Any,
    rejection: EventRejection,
    *,
    system_id: str,
    partner_id: str,
    received_at: datetime,
) -> dict[str, Any]:
    """The ``tracking.dlq`` body of an event refused at the edge (malformed, too large, no
    id, a time out of range), in the shape validation dead-letters with, so
    ``tracking_rejections`` and ``/rejected-events`` list it under its system: ``reasons``
    (``"<reason>: <message>"``), ``system_id``, ``partner_id`` and ``event``, which holds
    ``received_at`` (ISO-8601), the ``event`` name and ``message_id`` when the SDK sent
    usable ones (else ""), and the event as sent under ``payload``. Why: an SDK that got
    200 does not read the per-event answer (a browser never does), so the partner finds
    refused events where validation's refusals are."""
    fields = raw if isinstance(raw, dict) else {}

    def text(*names: str) -> str:
        for name in names:
            value = fields.get(name)
            if isinstance(value, str) and value.strip():
                # a lone surrogate (JSON allows it, UTF-8 does not) becomes "?"
                return value[:MAX_TEXT_LENGTH].encode("utf-8", "replace").decode()
        return ""

    return {
        "reasons": [f"{rejection.reason}: {rejection.message}"],
        "system_id": system_id,
        "partner_id": partner_id,
        "event": {
            "received_at": _aware_utc("received_at", received_at).isoformat(),
            "event": text("event", "name", "type"),
            "message_id": text("messageId", "message_id"),
            "payload": raw,
        },
    }
