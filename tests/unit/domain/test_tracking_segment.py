"""The one decoder for both wire shapes: ours (snake_case) and Segment's HTTP Tracking API
(camelCase, a ``type`` per call, ``sentAt``/``writeKey``/``context`` on the batch).

The Segment calls are built by the real segment-analytics-python client with ``send=False``
(its ``_enqueue`` then returns the message it would queue, and no thread starts), so these
tests read exactly what the SDK sends.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import DatetimeSerializer

from pipeline.domain.errors import InvalidValue
from pipeline.domain.tracking import (
    MESSAGE_NAMESPACE,
    CallType,
    EventRejection,
    RejectReason,
    SdkRequest,
    TrackedEvent,
    read_request,
    recorded_data,
)
from tests.unit.domain.tracking_samples import PARTNER_ID, RECEIVED, SYSTEM_ID, decode, parse

CLIENT_TIME = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)  # the device's clock, 2 h behind

SDK = Client("sk_live_unit", send=False)


def sdk_message(call: str, **kw: Any) -> dict[str, Any]:
    """What the SDK puts in ``batch``: its message, through its own JSON encoder."""
    ok, msg = getattr(SDK, call)(timestamp=CLIENT_TIME, **kw)
    assert ok
    return json.loads(json.dumps(msg, cls=DatetimeSerializer))


def ok(raw: Any, **kw: Any) -> TrackedEvent:
    result = parse(raw, **kw)
    assert isinstance(result, TrackedEvent), result
    return result


def refused(raw: Any, reason: RejectReason = RejectReason.MALFORMED, **kw: Any) -> str:
    result = parse(raw, **kw)
    assert isinstance(result, EventRejection), result
    assert result.reason is reason, result
    return result.message


class TestEveryCallTypeFromTheSdk:
    def test_track(self) -> None:
        msg = sdk_message("track", user_id="u-1", event="Order Completed",
                          properties={"total": 9.5}, context={"ip": "1.2.3.4"})  # fmt: skip
        e = ok(msg)
        assert (e.type, e.event, e.user_id, e.anonymous_id) == ("track", "Order Completed",
                                                                "u-1", None)  # fmt: skip
        assert e.message_id == msg["messageId"] and uuid.UUID(e.message_id).version == 4
        assert e.properties == {"total": 9.5} and e.traits == {}
        assert e.context == {"ip": "1.2.3.4", "library": msg["context"]["library"]}
        assert e.timestamp == e.original_timestamp == CLIENT_TIME

    def test_identify_keeps_traits_and_is_named_after_its_type(self) -> None:
        msg = sdk_message("identify", user_id="u-1", anonymous_id="a-1",
                          traits={"email": "ada@example.org", "plan": "pro"})  # fmt: skip
        e = ok(msg)
        assert (e.type, e.event) == ("identify", "identify")
        assert e.traits == {"email": "ada@example.org", "plan": "pro"} and e.properties == {}
        assert (e.user_id, e.anonymous_id) == ("u-1", "a-1")

    @pytest.mark.parametrize("call", ["page", "screen"])
    def test_page_and_screen_are_named_by_their_name(self, call: str) -> None:
        msg = sdk_message(call, anonymous_id="a-1", name="Pricing", category="Docs",
                          properties={"path": "/pricing"})  # fmt: skip
        e = ok(msg)
        assert (e.type, e.event, e.category) == (call, "Pricing", "Docs")
        assert e.properties == {"path": "/pricing"}

    @pytest.mark.parametrize("call", ["page", "screen"])
    def test_an_unnamed_page_or_screen_is_named_after_its_type(self, call: str) -> None:
        e = ok(sdk_message(call, anonymous_id="a-1"))
        assert (e.type, e.event, e.category) == (call, call, None)

    def test_group_keeps_group_id_and_traits(self) -> None:
        msg = sdk_message("group", user_id="u-1", group_id="g-9", traits={"employees": 420})
        e = ok(msg)
        assert (e.type, e.event, e.group_id) == ("group", "group", "g-9")
        assert e.traits == {"employees": 420}

    def test_alias_keeps_previous_id(self) -> None:
        e = ok(sdk_message("alias", previous_id="a-1", user_id="u-1"))
        assert (e.type, e.event, e.user_id, e.previous_id) == ("alias", "alias", "u-1", "a-1")

    def test_recorded_data_carries_every_field(self) -> None:
        e = ok(sdk_message("group", user_id="u-1", group_id="g-9", traits={"b": 1, "a": 2}))
        data = recorded_data(e, schema_valid=True, structure_version=None)
        assert data["type"] == "group" and data["group_id"] == "g-9"
        assert data["traits"] == '{"a":2,"b":1}'
        assert data["original_timestamp"] == e.original_timestamp


class TestBothShapesOneDecoder:
    def test_snake_and_camel_case_give_the_same_event(self) -> None:
        common = {"event": "Signup", "timestamp": "2024-05-01T10:00:00Z", "type": "track"}
        snake = {**common, "user_id": "u", "anonymous_id": "a", "message_id": "m",
                 "sent_at": "2024-05-01T10:00:02Z"}  # fmt: skip
        camel = {**common, "userId": "u", "anonymousId": "a", "messageId": "m",
                 "sentAt": "2024-05-01T10:00:02Z"}  # fmt: skip
        assert ok(snake) == ok(camel)
        group = {"type": "group", "user_id": "u", "message_id": "m"}
        assert ok({**group, "group_id": "g"}) == ok({**group, "groupId": "g"})
        alias = {"type": "alias", "user_id": "u", "message_id": "m"}
        assert ok({**alias, "previous_id": "p"}) == ok({**alias, "previousId": "p"})

    def test_our_shape_is_a_track_call(self) -> None:
        e = ok({"event": "page_view", "anonymous_id": "a-1", "message_id": "m-1"})
        assert (e.type, e.traits, e.group_id, e.previous_id, e.category) == (
            "track", {}, None, None, None)  # fmt: skip

    @pytest.mark.parametrize(
        ("snake", "camel"),
        [("user_id", "userId"), ("anonymous_id", "anonymousId"), ("message_id", "messageId")],
    )
    def test_both_spellings_that_differ_are_malformed(self, snake: str, camel: str) -> None:
        raw = {"event": "e", "user_id": "u", snake: "one", camel: "two"}
        assert camel in refused(raw)
        assert isinstance(parse({"event": "e", "user_id": "u", snake: "x", camel: "x"}),
                          TrackedEvent)  # fmt: skip

    def test_a_null_spelling_gives_way_to_the_other(self) -> None:
        assert ok({"event": "e", "user_id": None, "userId": "u"}).user_id == "u"

    def test_ignored_segment_fields(self) -> None:
        raw = {"event": "e", "userId": "u", "integrations": {"All": False}, "channel": "server"}
        assert ok(raw).properties == {}


class TestTypes:
    @pytest.mark.parametrize("value", ["Track", "click", "", 3, ["track"], {"t": 1}, True])
    def test_unknown_type_is_malformed(self, value: Any) -> None:
        assert "type must be one of" in refused({"event": "e", "user_id": "u", "type": value})

    def test_the_route_sets_the_type(self) -> None:
        e = ok({"userId": "u", "traits": {"x": 1}}, call_type=CallType.IDENTIFY)
        assert (e.type, e.event) == ("identify", "identify")
        assert ok({"userId": "u", "type": "identify"}, call_type=CallType.IDENTIFY).type == (
            "identify"
        )

    def test_a_type_other_than_the_routes_is_malformed(self) -> None:
        message = refused({"event": "e", "userId": "u", "type": "page"}, call_type=CallType.TRACK)
        assert "page call sent to the track route" in message

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            ({"type": "group", "userId": "u"}, "group_id"),
            ({"type": "group", "userId": "u", "groupId": "  "}, "group_id"),
            ({"type": "alias", "userId": "u"}, "previous_id"),
            ({"type": "group", "userId": "u", "groupId": 7}, "group_id"),
            ({"type": "alias", "userId": "u", "previousId": "p" * 201}, "previous_id"),
            ({"type": "page", "userId": "u", "name": 5}, "name"),
            ({"type": "page", "userId": "u", "category": ["c"]}, "category"),
            ({"type": "identify", "userId": "u", "traits": "x"}, "traits"),
        ],
    )
    def test_type_specific_fields(self, raw: dict[str, Any], field: str) -> None:
        assert field in refused(raw)

    def test_a_track_call_still_needs_an_event_name(self) -> None:
        refused({"type": "track", "userId": "u"})

    def test_a_page_name_is_stripped(self) -> None:
        assert ok({"type": "page", "userId": "u", "name": " Home "}).event == "Home"

    def test_ids_are_still_required(self) -> None:
        refused({"type": "identify", "traits": {}}, RejectReason.MISSING_ID)
        refused({"type": "alias", "previousId": "p"}, RejectReason.MISSING_ID)


class TestClockSkew:
    """Segment spec, "Timestamps": timestamp = receivedAt - (sentAt - originalTimestamp)."""

    def test_batch_sent_at_corrects_the_client_clock(self) -> None:
        raw = {"event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z"}
        e = ok(raw, sent_at="2024-05-01T10:00:05Z")
        assert e.timestamp == RECEIVED - timedelta(seconds=5)
        assert e.original_timestamp == CLIENT_TIME and e.received_at == RECEIVED

    def test_the_events_own_sent_at_wins(self) -> None:
        raw = {"event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z",
               "sentAt": "2024-05-01T10:00:01Z"}  # fmt: skip
        assert ok(raw, sent_at="2024-05-01T10:00:30Z").timestamp == RECEIVED - timedelta(seconds=1)

    def test_epoch_numbers_and_offsets(self) -> None:
        raw = {"event": "e", "user_id": "u", "timestamp": 1714557600, "sent_at": 1714557602500}
        assert ok(raw).timestamp == RECEIVED - timedelta(seconds=2.5)
        raw = {"event": "e", "user_id": "u", "timestamp": "2024-05-01T12:00:00+02:00",
               "sent_at": "2024-05-01T10:00:10Z"}  # fmt: skip
        assert ok(raw).timestamp == RECEIVED - timedelta(seconds=10)

    def test_without_sent_at_the_client_time_stands(self) -> None:
        e = ok({"event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z"})
        assert e.timestamp == e.original_timestamp == CLIENT_TIME

    def test_without_a_client_time_it_is_the_received_time(self) -> None:
        e = ok({"event": "e", "userId": "u"}, sent_at="2024-05-01T10:00:05Z")
        assert e.timestamp == e.original_timestamp == RECEIVED

    @pytest.mark.parametrize("sent_at", ["soon", "", [], True, 10**30])
    def test_an_unreadable_sent_at_costs_the_correction_not_the_event(self, sent_at: Any) -> None:
        raw = {"event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z"}
        assert ok(raw, sent_at=sent_at).timestamp == CLIENT_TIME
        assert ok({**raw, "sentAt": sent_at}).timestamp == CLIENT_TIME

    def test_a_correction_out_of_range_is_malformed(self) -> None:
        raw = {"event": "e", "userId": "u", "timestamp": "0001-01-01T00:00:00Z",
               "sentAt": "9999-12-31T00:00:00Z"}  # fmt: skip
        assert "clock skew" in refused(raw)

    def test_a_bad_timestamp_is_still_malformed(self) -> None:
        refused({"event": "e", "userId": "u", "timestamp": "yesterday"}, sent_at=1)


class TestMessageIds:
    def test_the_sdk_message_id_is_the_message_id(self) -> None:
        msg = sdk_message("track", user_id="u-1", event="e")
        assert ok(msg).message_id == msg["messageId"]

    def test_a_derived_id_ignores_what_changes_between_sends(self) -> None:
        raw = {"event": "e", "userId": "u"}
        first = ok({**raw, "sentAt": "2024-05-01T10:00:00Z", "writeKey": "k1"}).message_id
        again = ok({**raw, "sentAt": "2024-05-01T10:09:00Z", "writeKey": "k2"}).message_id
        assert first == again == ok(raw).message_id
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"))
        assert first == str(uuid.uuid5(MESSAGE_NAMESPACE, f"{SYSTEM_ID}\n{canonical}"))


class TestRequests:
    def test_a_segment_batch(self) -> None:
        events = [{"type": "track", "event": "e", "userId": "u"}]
        body = {"batch": events, "writeKey": "sk_live_x", "sentAt": "2024-05-01T10:00:00Z",
                "context": {"ip": "1.2.3.4"}}  # fmt: skip
        assert read_request(body) == SdkRequest(
            events, write_key="sk_live_x", sent_at="2024-05-01T10:00:00Z",
            context={"ip": "1.2.3.4"},
        )  # fmt: skip

    def test_our_batch_shapes(self) -> None:
        events = [{"event": "e", "user_id": "u"}]
        assert read_request({"batch": events}) == read_request(events) == SdkRequest(events)
        assert read_request({"batch": [], "sent_at": 5}).sent_at == 5

    def test_a_single_call_carries_its_own_key(self) -> None:
        body = {"userId": "u", "writeKey": "sk_live_x"}
        assert read_request(body, CallType.IDENTIFY) == SdkRequest(
            [body], write_key="sk_live_x", call_type=CallType.IDENTIFY
        )
        assert read_request({"writeKey": 5}, CallType.TRACK).write_key is None
        assert read_request([1], CallType.TRACK).events == [[1]]

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"events": []}, "batch"), ("x", "batch"), (None, "batch"), ({"batch": {}}, "batch"),
         ({"batch": [], "context": []}, "context")],
    )  # fmt: skip
    def test_bodies_of_neither_shape(self, body: Any, field: str) -> None:
        with pytest.raises(InvalidValue) as info:
            read_request(body)
        assert info.value.field == field

    def test_decode_events_applies_the_batch_fields_in_order(self) -> None:
        request = read_request({
            "batch": [
                {"type": "track", "event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z",
                 "context": {"ip": "9.9.9.9", "page": {"path": "/"}}},
                "not an event",
                {"type": "identify", "userId": "u", "properties": {"blob": "x" * 40_000}},
            ],
            "sentAt": "2024-05-01T10:00:05Z",
            "context": {"ip": "1.2.3.4", "locale": "de"},
        })  # fmt: skip
        first, second, third = decode(request)
        assert isinstance(first, TrackedEvent)
        assert first.timestamp == RECEIVED - timedelta(seconds=5)
        # the batch's context under the event's own (Segment HTTP API, "Batch")
        assert first.context == {"ip": "9.9.9.9", "locale": "de", "page": {"path": "/"}}
        assert isinstance(second, EventRejection) and second.reason is RejectReason.MALFORMED
        assert isinstance(third, EventRejection) and third.reason is RejectReason.TOO_LARGE


class TestTrackedEventJson:
    def test_round_trip_with_every_field(self) -> None:
        e = ok(sdk_message("group", user_id="u", group_id="g", traits={"n": 1}),
               sent_at="2024-05-01T10:00:01Z")  # fmt: skip
        assert e.timestamp != e.original_timestamp
        assert TrackedEvent.from_json_dict(json.loads(json.dumps(e.to_json_dict()))) == e

    def test_a_record_written_before_call_types_reads_as_a_track_call(self) -> None:
        old = {"message_id": "m", "event": "e", "user_id": "u", "anonymous_id": None,
               "timestamp": "2024-05-01T10:00:00+00:00", "received_at": RECEIVED.isoformat(),
               "properties": {}, "context": {}, "system_id": SYSTEM_ID,
               "partner_id": PARTNER_ID}  # fmt: skip
        e = TrackedEvent.from_json_dict(old)
        assert (e.type, e.traits, e.group_id, e.previous_id, e.category) == (
            "track", {}, None, None, None)  # fmt: skip
        assert e.original_timestamp == e.timestamp == CLIENT_TIME

    @pytest.mark.parametrize(
        ("field", "change"),
        [("type", {"type": "click"}), ("traits", {"traits": []}),
         ("group_id", {"group_id": 3}), ("original_timestamp", {"original_timestamp": "x"})],
    )  # fmt: skip
    def test_bad_new_fields(self, field: str, change: dict[str, Any]) -> None:
        d = {**ok({"event": "e", "user_id": "u"}).to_json_dict(), **change}
        with pytest.raises(InvalidValue) as info:
            TrackedEvent.from_json_dict(d)
        assert info.value.field == field
