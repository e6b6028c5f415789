from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain import jsontext
from pipeline.domain.errors import InvalidValue
from pipeline.domain.tracking import (
    MAX_EVENT_BYTES,
    MESSAGE_NAMESPACE,
    TRACKING_EVENT_NAMESPACE,
    EventRejection,
    RejectReason,
    TrackedEvent,
    event_id_for,
    parse_sdk_event,
    read_request,
    recorded_data,
)
from tests.unit.domain.tracking_samples import PARTNER_ID, RECEIVED, SYSTEM_ID, decode
from tests.unit.domain.tracking_samples import parse as parse_sample


def parse(raw: Any, **kw: Any) -> TrackedEvent | EventRejection:
    size = kw.pop(
        "raw_size", len(json.dumps(raw, default=str).encode()) if isinstance(raw, dict) else 2
    )
    return parse_sample(raw, raw_size=size, **kw)


def ok(raw: Any, **kw: Any) -> TrackedEvent:
    result = parse(raw, **kw)
    assert isinstance(result, TrackedEvent), result
    return result


def refused(raw: Any, reason: RejectReason, **kw: Any) -> EventRejection:
    result = parse(raw, **kw)
    assert isinstance(result, EventRejection), result
    assert result.reason is reason, result
    return result


def event(**kw: Any) -> dict[str, Any]:
    return {"event": "Order Completed", "user_id": "u-1", "message_id": "m-1", **kw}


def test_full_event() -> None:
    raw = event(
        anonymous_id="a-1",
        timestamp="2024-05-01T10:00:00.25Z",
        properties={"total": 9.5},
        context={"library": {"name": "js"}},
        sentAt="ignored",
    )
    assert ok(raw) == TrackedEvent(
        message_id="m-1",
        event="Order Completed",
        user_id="u-1",
        anonymous_id="a-1",
        timestamp=datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC),
        received_at=RECEIVED,
        properties={"total": 9.5},
        context={"library": {"name": "js"}},
        system_id=SYSTEM_ID,
        partner_id=PARTNER_ID,
    )


def test_minimal_event_defaults() -> None:
    parsed = ok({"event": " Signup ", "anonymous_id": "a-1"})
    assert parsed.event == "Signup"
    assert (parsed.user_id, parsed.anonymous_id, parsed.distinct_id) == (None, "a-1", "a-1")
    assert parsed.timestamp == RECEIVED and parsed.properties == {} and parsed.context == {}
    assert ok(event(properties=None, context=None)).properties == {}


def test_distinct_id_prefers_user_id() -> None:
    assert ok(event(anonymous_id="a-1")).distinct_id == "u-1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive = UTC
        ("2024-05-01T10:00:00.123456Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        (1714557600, datetime(2024, 5, 1, 10, tzinfo=UTC)),  # epoch seconds
        (1714557600.5, datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        (1714557600123, datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),  # epoch ms
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (None, RECEIVED),
    ],
)
def test_timestamp_forms(value: Any, expected: datetime) -> None:
    parsed = ok(event(timestamp=value))
    assert parsed.timestamp == expected and parsed.timestamp.tzinfo is UTC


@pytest.mark.parametrize("value", ["yesterday", "1714557600", "", True, [], {}, 10**30])
def test_bad_timestamp_is_malformed(value: Any) -> None:
    refused(event(timestamp=value), RejectReason.MALFORMED)


@pytest.mark.parametrize(
    "raw",
    [
        [event()],
        "event",
        None,
        event(event=""),
        event(event="   "),
        event(event=7),
        event(event="x" * 201),
        {"user_id": "u-1"},
        event(message_id=""),
        event(message_id=5),
        event(message_id="m" * 201),
        event(properties=[1]),
        event(properties="{}"),
        event(context=3),
        event(anonymous_id=5),
        event(anonymous_id="a" * 201),
    ],
)
def test_malformed(raw: Any) -> None:
    refused(raw, RejectReason.MALFORMED)


@pytest.mark.parametrize(
    "bad",
    [b'{"x": NaN}', b'{"x": Infinity}', b'{"x": -Infinity}', b'{"x": "\\ud800"}'],
)
def test_an_event_without_plain_json_is_refused_alone(bad: bytes) -> None:
    # Python's json.dumps writes NaN and Infinity, so SDKs send them; the batch goes on
    body = b'{"batch": [{"event": "e", "user_id": "u", "properties": ' + bad + b"}, "
    body += b'{"event": "e", "user_id": "u"}]}'
    first, second = decode(read_request(jsontext.loads(body)))
    assert isinstance(first, EventRejection) and first.reason is RejectReason.MALFORMED
    assert isinstance(second, TrackedEvent)


def test_a_python_value_json_cannot_hold_is_refused() -> None:
    request = read_request({"batch": [event(properties={"x": object()})]})
    (result,) = decode(request)
    assert isinstance(result, EventRejection) and result.reason is RejectReason.MALFORMED


def test_an_id_less_event_with_a_value_json_cannot_hold_is_refused() -> None:
    raw = {"event": "e", "user_id": "u", "properties": {"x": float("nan")}}
    refused(raw, RejectReason.MALFORMED)


@pytest.mark.parametrize(
    "ids",
    [
        {},
        {"user_id": None, "anonymous_id": None},
        {"user_id": "", "anonymous_id": "  "},
        {"user_id": 42},
        {"anonymous_id": "a" * 201},
    ],
)
def test_missing_id(ids: dict[str, Any]) -> None:
    refused({"event": "Signup", **ids}, RejectReason.MISSING_ID)


def test_size_limit() -> None:
    raw = event()
    assert isinstance(parse(raw, raw_size=MAX_EVENT_BYTES), TrackedEvent)
    result = refused(raw, RejectReason.TOO_LARGE, raw_size=MAX_EVENT_BYTES + 1)
    assert str(MAX_EVENT_BYTES) in result.message
    refused(raw, RejectReason.TOO_LARGE, raw_size=101, max_event_bytes=100)


def test_200_char_limits_are_inclusive() -> None:
    raw = event(event="e" * 200, user_id="u" * 200, message_id="m" * 200)
    assert ok(raw).user_id == "u" * 200


class TestMessageIds:
    def test_sdk_message_id_is_kept(self) -> None:
        assert ok(event(message_id="abc")).message_id == "abc"

    def test_derived_id_is_deterministic_and_key_order_free(self) -> None:
        raw = {"event": "Signup", "anonymous_id": "a-1", "properties": {"b": 1, "a": 2}}
        reordered = {"properties": {"a": 2, "b": 1}, "anonymous_id": "a-1", "event": "Signup"}
        first = ok(raw).message_id
        assert first == ok(reordered).message_id == ok({**raw, "message_id": None}).message_id
        assert uuid.UUID(first).version == 5
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        assert first == str(uuid.uuid5(MESSAGE_NAMESPACE, f"{SYSTEM_ID}\n{canonical}"))

    def test_derived_id_depends_on_content_and_system(self) -> None:
        raw = {"event": "Signup", "anonymous_id": "a-1"}
        assert ok(raw).message_id != ok({**raw, "anonymous_id": "a-2"}).message_id
        other = parse_sdk_event(
            raw, system_id="other", partner_id=PARTNER_ID, received_at=RECEIVED, raw_size=10
        )
        assert isinstance(other, TrackedEvent) and other.message_id != ok(raw).message_id

    def test_event_id_for(self) -> None:
        expected = str(uuid.uuid5(TRACKING_EVENT_NAMESPACE, f"{SYSTEM_ID}/m-1"))
        assert event_id_for(SYSTEM_ID, "m-1") == expected
        assert event_id_for(SYSTEM_ID, "m-1") != event_id_for("other", "m-1")
        assert event_id_for(SYSTEM_ID, "m-1") != event_id_for(SYSTEM_ID, "m-2")


def test_naive_received_at_is_a_caller_bug() -> None:
    with pytest.raises(InvalidValue):
        parse_sdk_event(
            event(),
            system_id=SYSTEM_ID,
            partner_id=PARTNER_ID,
            received_at=RECEIVED.replace(tzinfo=None),
            raw_size=1,
        )


def test_received_at_is_normalised_to_utc() -> None:
    local = RECEIVED.astimezone(timezone(timedelta(hours=9)))
    result = parse_sdk_event(
        event(), system_id=SYSTEM_ID, partner_id=PARTNER_ID, received_at=local, raw_size=1
    )
    assert isinstance(result, TrackedEvent) and result.received_at.tzinfo is UTC


class TestTrackedEvent:
    def test_json_dict_round_trip(self) -> None:
        parsed = ok(event(anonymous_id=None, properties={"é": [1, {"x": None}]}, timestamp=1.5))
        d = json.loads(json.dumps(parsed.to_json_dict()))
        assert d["timestamp"] == "1970-01-01T00:00:01.500000+00:00"
        assert TrackedEvent.from_json_dict(d) == parsed

    @pytest.mark.parametrize(
        ("field", "change"),
        [
            ("event", {"event": None}),
            ("properties", {"properties": []}),
            ("timestamp", {"timestamp": "soon"}),
            ("timestamp", {"timestamp": "2024-05-01T10:00:00"}),
            ("partner_id", {"partner_id": ...}),
            ("user_id", {"user_id": None, "anonymous_id": None}),
        ],
    )
    def test_from_json_dict_errors(self, field: str, change: dict[str, Any]) -> None:
        d = {**ok(event()).to_json_dict(), **change}
        d = {k: v for k, v in d.items() if v is not ...}
        with pytest.raises(InvalidValue) as info:
            TrackedEvent.from_json_dict(d)
        assert info.value.field == field

    def test_requires_aware_times_and_an_id(self) -> None:
        parsed = ok(event())
        with pytest.raises(InvalidValue):
            replace(parsed, timestamp=datetime(2024, 1, 1))
        with pytest.raises(InvalidValue):
            replace(parsed, user_id=None)


def test_recorded_data() -> None:
    parsed = ok(event(properties={"b": 1, "a": "ü"}, context={"ip": "1.2.3.4"}))
    assert recorded_data(parsed, schema_valid=False, structure_version=3) == {
        "partner_id": PARTNER_ID,
        "system_id": SYSTEM_ID,
        "type": "track",
        "event": "Order Completed",
        "message_id": "m-1",
        "user_id": "u-1",
        "anonymous_id": None,
        "group_id": None,
        "previous_id": None,
        "category": None,
        "timestamp": RECEIVED,
        "original_timestamp": RECEIVED,
        "received_at": RECEIVED,
        "properties": '{"a":"ü","b":1}',
        "traits": "{}",
        "context": '{"ip":"1.2.3.4"}',
        "schema_valid": False,
        "structure_version": 3,
    }
    assert recorded_data(parsed, schema_valid=True, structure_version=None)["properties"] == (
        json.dumps({"b": 1, "a": "ü"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )
