"""The compiled ingestion path (``streamfold_edge``) against the Python path, outcome for
outcome and byte for byte, on real SDK payload shapes and on generated edge cases.

Every example runs both paths. When the compiled path raises ``Fallback`` the caller runs
the Python path for the whole request, so a fallback is always correct; but the realistic
SDK shapes (segment-analytics-python batches, analytics.js single calls, our snake_case
batches) must not fall back, or the compiled path would not be covering the common case.
The generated edge cases count their fallbacks and require most examples to run compiled.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import streamfold_edge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment.analytics import Client
from segment.analytics.request import DatetimeSerializer
from streamfold_edge import (  # a missing build fails this module: never skipped
    Fallback,
    Validator,
    batch_response,
    parse_request,
)

# Every import of project code, in one block (modules move: repoint here).
from tests.unit.edge.reference import (
    EPOCH,
    FINGERPRINT,
    RequestRefused,
    Structure,
    python_batch_body,
    python_outcomes,
    typed,
)

SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
PARTNER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
PRODUCER = "streamfold-api"
MAX_EVENT_BYTES = 32 * 1024
CALL_TYPES = ["track", "identify", "page", "screen", "group", "alias"]

PAGE_VIEW = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1, "maxLength": 2000},
        "title": {"type": "string", "maxLength": 500},
        "url": {"type": "string"},
        "referrer": {"type": "string"},
    },
    "required": ["path", "url"],
}
ORDER = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
    "required": ["total"],
    "additionalProperties": False,
}
ANYTHING = {"type": "object"}
NOTHING_REQUIRED_BUT_X = {"type": "object", "required": ["x"]}
# names a structure may be given to
NAMES = [
    "page_view",
    "Order Completed",
    "identify",
    "page",
    "Home",
    "screen",
    "group",
    "alias",
    "track",
    "Signed Up",
]
SCHEMAS = [PAGE_VIEW, ORDER, ANYTHING, NOTHING_REQUIRED_BUT_X]


def _us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


RECEIVED = _us(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))


# ---------------------------------------------------------------------------------------
# running both paths


def compiled_validators(structures: dict[str, Structure]) -> dict[str, tuple[Any, bool, int]]:
    return {
        name: (Validator(s.schema_json), s.required, s.version) for name, s in structures.items()
    }


def compare(
    body: bytes,
    call_type: str | None,
    *,
    structures: dict[str, Structure] | None = None,
    reject_unknown: bool = False,
    received_at_us: int,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> str:
    """Run both paths on one request; "native" when the compiled path produced the
    outcomes (and they equal the Python path's), "fallback" when it raised ``Fallback``."""
    structures = structures or {}
    args = dict(
        system_id=SYSTEM_ID,
        partner_id=PARTNER_ID,
        received_at_us=received_at_us,
        producer=PRODUCER,
        max_event_bytes=max_event_bytes,
    )
    try:
        expected: Any = python_outcomes(
            body, call_type, structures=structures, reject_unknown=reject_unknown, **args
        )
    except RequestRefused:
        expected = None
    try:
        validators = compiled_validators(structures)
        request = parse_request(body, call_type)
        got = request.decode(
            **args, fingerprint=FINGERPRINT, structures=validators, reject_unknown=reject_unknown
        )
    except Fallback:
        return "fallback"
    assert expected is not None, "the Python path refuses this request; the compiled one did not"
    write_key, count, outcomes = expected
    assert (request.write_key, request.count) == (write_key, count)
    assert len(got) == len(outcomes)
    for index, (mine, theirs) in enumerate(zip(got, outcomes, strict=True)):
        assert mine[0] == theirs[0], (index, mine, theirs)
        if mine[0] == "rejected":
            assert mine[1:3] == theirs[1:3], index
            assert typed(mine[3]) == typed(theirs[3]), index
        else:
            assert mine[1] == theirs[1], index
            assert mine[2] == theirs[2], (index, mine[2], theirs[2])
    assert batch_response(got) == python_batch_body(outcomes)
    return "native"


def structures_st(names: list[str] = NAMES) -> st.SearchStrategy[dict[str, Structure]]:
    structure = st.builds(
        Structure,
        schema_json=st.sampled_from(SCHEMAS).map(json.dumps),
        required=st.booleans(),
        version=st.integers(1, 40),
    )
    return st.dictionaries(st.sampled_from(names), structure, max_size=4)


received_st = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(_us)

# ---------------------------------------------------------------------------------------
# realistic SDK shapes: never a fallback

SDK = Client("sk_live_unit", send=False)
words = st.text(alphabet=string.ascii_letters + string.digits + " _-", min_size=1, max_size=24)
unicode_words = st.text(min_size=1, max_size=24).filter(lambda s: s.strip())
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_value = st.recursive(
    json_scalar,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=10,
)
properties_st = st.dictionaries(st.text(max_size=12), json_value, max_size=6)
page_properties_st = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["/", "/pricing", "/docs/ü", "/a?b=c"]),
        "url": st.sampled_from(["https://example.com/", "https://example.com/pricing"]),
    },
    optional={"title": unicode_words, "referrer": st.just(""), "search": st.just("")},
)
client_time_st = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@st.composite
def segment_python_batch(draw: st.DrawFn) -> tuple[bytes, int]:
    """``{"batch", "sentAt", "writeKey"}`` as segment-analytics-python 2.4 posts it, its
    messages built by the real client (``send=False``), serialised by its own encoder."""
    received = draw(received_st)
    messages = []
    for _ in range(draw(st.integers(1, 6))):
        call = draw(st.sampled_from(CALL_TYPES))
        ids = draw(
            st.sampled_from(
                [{"user_id": "u"}, {"anonymous_id": "a"}, {"user_id": "u", "anonymous_id": "a"}]
            )
        )
        ids = {k: draw(st.one_of(words, st.uuids().map(str))) for k in ids}
        when = draw(client_time_st)
        kw: dict[str, Any] = dict(ids, timestamp=when, context=draw(properties_st))
        if call == "track":
            kw |= {
                "event": draw(st.sampled_from(NAMES[:2]) | words),
                "properties": draw(properties_st),
            }
        elif call in ("identify", "group"):
            kw["traits"] = draw(properties_st)
        elif call in ("page", "screen"):
            kw |= {
                "name": draw(st.none() | st.sampled_from(["Home", "page_view"]) | words),
                "category": draw(st.none() | words),
                "properties": draw(page_properties_st),
            }
        if call == "group":
            kw["group_id"] = draw(words)
        if call == "alias":
            kw = {"previous_id": draw(words), "user_id": draw(words), "timestamp": when}
        ok, msg = getattr(SDK, call)(**kw)
        assert ok
        messages.append(msg)
    sent = datetime.fromtimestamp(received / 1e6, tz=UTC) + timedelta(
        seconds=draw(st.integers(-7200, 7200))
    )
    body = {"batch": messages, "sentAt": sent.isoformat(), "writeKey": "sk_live_unit"}
    return json.dumps(body, cls=DatetimeSerializer).encode(), received


@st.composite
def analytics_js_call(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """One analytics.js (analytics-next 1.84) call as it posts it to ``/v1/{t,p,i,s,g,a}``:
    ``ajs-next-`` message id, ``context.page``, ``userAgent``, ``_metadata``,
    ``integrations``, per-event ``sentAt`` and ``writeKey``; ISO times in ms with ``Z``."""
    received = draw(received_st)
    now = datetime.fromtimestamp(received / 1e6, tz=UTC)
    client = now + timedelta(milliseconds=draw(st.integers(-86_400_000, 3_600_000)))
    sent = client + timedelta(milliseconds=draw(st.integers(0, 5000)))
    call = draw(st.sampled_from(CALL_TYPES))
    path = draw(st.sampled_from(["/", "/pricing", "/blog/über-uns", "/search"]))
    page = {
        "path": path,
        "referrer": draw(st.sampled_from(["", "https://google.com/"])),
        "search": "",
        "title": draw(unicode_words),
        "url": f"https://shop.example{path}",
    }
    z = lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
    event: dict[str, Any] = {
        "timestamp": z(client),
        "integrations": draw(st.sampled_from([{}, {"Segment.io": True}, {"All": False}])),
        "type": call,
        "context": {
            "page": page,
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "userAgentData": {
                "brands": [{"brand": "Chromium", "version": "124"}],
                "mobile": False,
                "platform": "Linux",
            },
            "locale": draw(st.sampled_from(["en-US", "de-DE", "ja-JP"])),
            "library": {"name": "analytics.js", "version": "npm:next-1.84.0"},
            "timezone": "Europe/Berlin",
        },
        "messageId": f"ajs-next-{int(client.timestamp() * 1000)}-{draw(st.uuids(version=4))}",
        "anonymousId": str(draw(st.uuids())),
        "writeKey": "pk_live_web",
        "sentAt": z(sent),
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    if draw(st.booleans()):
        event["userId"] = draw(words)
    if call == "track":
        event["event"] = draw(st.sampled_from(NAMES[:2]) | unicode_words)
        event["properties"] = draw(properties_st)
    elif call == "page":
        event["properties"] = dict(page, **draw(properties_st))
        if draw(st.booleans()):
            event["name"] = draw(st.sampled_from(["Home", "page_view"]) | unicode_words)
    elif call == "screen":
        event["name"] = draw(unicode_words)
        event["properties"] = draw(properties_st)
    elif call in ("identify", "group"):
        event["traits"] = draw(properties_st)
    if call == "group":
        event["groupId"] = draw(words)
    if call == "alias":
        event["previousId"] = event["anonymousId"]
        event["userId"] = draw(words)
    return json.dumps(event, ensure_ascii=draw(st.booleans())).encode(), call, received


@st.composite
def snake_case_batch(draw: st.DrawFn) -> tuple[bytes, int]:
    """Our own shape (``bench/loadgen.py``): snake_case ids, ``page_view`` events."""
    received = draw(received_st)
    now = datetime.fromtimestamp(received / 1e6, tz=UTC)
    events = []
    for i in range(draw(st.integers(1, 8))):
        when = now - timedelta(milliseconds=draw(st.integers(0, 10**9)))
        stamp = draw(
            st.sampled_from(
                [
                    when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    when.isoformat(),
                    when.replace(tzinfo=None).isoformat(),
                    when.astimezone(timezone(timedelta(hours=-5))).isoformat(timespec="seconds"),
                    _us(when) // 1000,  # epoch ms
                    _us(when) // 1_000_000,  # epoch s
                ]
            )
        )
        event = {
            "event": draw(st.sampled_from(["page_view", "Order Completed", "Signed Up"])),
            "anonymous_id": f"anon-{draw(st.integers(0, 99999)):05d}",
            "timestamp": stamp,
            "properties": draw(page_properties_st),
            "context": {"user_agent": "Mozilla/5.0", "locale": "en-US"},
        }
        if draw(st.booleans()):
            event["message_id"] = f"bench-{i:010d}"
        if draw(st.booleans()):
            event["user_id"] = draw(words)
        events.append(event)
    return json.dumps({"batch": events}).encode(), received


SDK_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize(
    "batches", [segment_python_batch(), snake_case_batch()], ids=["segment-python", "snake-case"]
)
@SDK_SETTINGS
@given(data=st.data(), structures=structures_st(), reject=st.booleans())
def test_sdk_batches_run_compiled(
    batches: st.SearchStrategy[tuple[bytes, int]],
    data: st.DataObject,
    structures: dict[str, Structure],
    reject: bool,
) -> None:
    body, received = data.draw(batches)
    assert (
        compare(body, None, structures=structures, reject_unknown=reject, received_at_us=received)
        == "native"
    )


@SDK_SETTINGS
@given(analytics_js_call(), structures_st(), st.booleans(), st.booleans())
def test_analytics_js_calls_run_compiled(
    case: tuple[bytes, str, int], structures: dict[str, Structure], reject: bool, routed: bool
) -> None:
    body, call, received = case
    # /v1/p (the call's route) or /v1/batch with the bare event in a list
    if not routed:
        body = b"[" + body + b"]"
    assert (
        compare(
            body,
            call if routed else None,
            structures=structures,
            reject_unknown=reject,
            received_at_us=received,
        )
        == "native"
    )


# ---------------------------------------------------------------------------------------
# generated edge cases: fallbacks allowed, counted

blank = st.sampled_from(["", " ", "\t\n", "\u3000", "\x1c\x1f", "\xa0", "\u2028", "\u200b"])
odd_text = st.one_of(
    st.text(max_size=6),
    blank,
    st.sampled_from(
        [
            "a" * 200,
            "a" * 201,
            "é" * 200,
            "😀" * 200,
            "😀" * 201,
            " x ",
            " " * 199 + "x",
            "x" + " " * 200,
            "\u0000",
            "\x7f",
            '"\\',
        ]
    ),
    st.text(min_size=198, max_size=203),
)
number = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-(2**70), 2**70),  # past 64 bits: the Python path reads these
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1.0, 1e16, 1e-7, 2.5e-5, 1e308, 5e-324, 1e11, 1e11 + 1]),
)
id_value = st.one_of(st.none(), odd_text, number, st.booleans(), st.just([]), st.just({}))


@st.composite
def iso_text(draw: st.DrawFn) -> str:
    """ISO-8601 in many of the forms ``datetime.fromisoformat`` reads and some it does
    not: basic and extended, any separator, 0-9 fraction digits with ``.`` or ``,``,
    offsets with seconds, out-of-range fields, the ends of the datetime range."""
    y = draw(
        st.sampled_from([1, 2, 1899, 1900, 1969, 1970, 2024, 2299, 2300, 9999])
        | st.integers(0, 9999)
    )
    mo, d = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    basic = draw(st.booleans()) and draw(st.booleans())
    date = f"{y:04d}{mo:02d}{d:02d}" if basic else f"{y:04d}-{mo:02d}-{d:02d}"
    if draw(st.integers(0, 9)) == 0:
        return date
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    sep = draw(st.sampled_from("T" * 6 + " x"))
    precision = draw(st.sampled_from(["h", "m", "s", "s", "f", "f", "f"]))
    tsep = "" if basic else ":"
    time = f"{h:02d}"
    if precision != "h":
        time += f"{tsep}{mi:02d}"
    if precision in "sf":
        time += f"{tsep}{s:02d}"
    if precision == "f":
        digits = draw(st.integers(0, 9))
        time += draw(st.sampled_from(".,")) + "".join(
            draw(st.sampled_from(string.digits)) for _ in range(digits)
        )
    oh, om = draw(st.integers(0, 24)), draw(st.integers(0, 60))
    tz = draw(
        st.sampled_from(
            [
                "",
                "",
                "Z",
                "Z",
                "z",
                f"+{oh:02d}:{om:02d}",
                f"-{oh:02d}:{om:02d}",
                f"+{oh:02d}{om:02d}",
                f"-{oh:02d}",
                "+00:00",
                "-00:00",
                f"+{oh:02d}:{om:02d}:30",
                f"+{oh:02d}:{om:02d}:30.5",
            ]
        )
    )
    return f"{date}{sep}{time}{tz}"


time_value = st.one_of(
    st.none(),
    iso_text(),
    st.integers(-(2**64), 2**64),
    st.integers(1_500_000_000, 1_800_000_000),  # epoch seconds
    st.integers(1_500_000_000_000, 1_800_000_000_000),  # epoch milliseconds
    st.sampled_from(
        [
            0,
            -1,
            10**11,
            10**11 + 1,
            253402300799,
            253402300800,
            -62135596800,
            -62135596801,
            1e11,
            1.7e12,
            1.5e9 + 0.5,
            1e20,
            -0.0,
            1e300,
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(1.5e9, 1.8e9),
    st.floats(1.5e12, 1.8e12),
    st.booleans(),
    st.text(max_size=12),
    st.just([]),
)

SPELLINGS = [
    ("user_id", "userId"),
    ("anonymous_id", "anonymousId"),
    ("message_id", "messageId"),
    ("group_id", "groupId"),
    ("previous_id", "previousId"),
    ("sent_at", "sentAt"),
]


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, so events get past the early rules to the later ones."""
    return st.integers(0, 3).flatmap(lambda n: odd if n == 0 else good)


@st.composite
def odd_event(draw: st.DrawFn) -> Any:
    """An event with any subset of the fields, each of an odd value now and then; both
    spellings of an id equal, equal as numbers only (1 and 1.0), or different."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.one_of(st.none(), number, odd_text, st.lists(st.integers(), max_size=2)))
    good_id = words | st.uuids().map(str)
    good_time = st.datetimes(
        min_value=datetime(2023, 1, 1), max_value=datetime(2024, 12, 31), timezones=st.just(UTC)
    ).map(lambda t: t.isoformat().replace("+00:00", "Z"))
    event: dict[str, Any] = {}
    fields = {
        "type": mostly(st.sampled_from(CALL_TYPES), st.sampled_from(["TRACK", "", None, 1])),
        "event": mostly(st.sampled_from(NAMES), odd_text | st.none() | number),
        "name": mostly(st.sampled_from(NAMES), odd_text | st.none() | number),
        "user_id": mostly(good_id, id_value),
        "userId": mostly(good_id, id_value),
        "anonymous_id": mostly(good_id, id_value),
        "anonymousId": mostly(good_id, id_value),
        "message_id": mostly(good_id, id_value),
        "messageId": mostly(good_id, id_value),
        "group_id": mostly(good_id, id_value),
        "groupId": mostly(good_id, id_value),
        "previous_id": mostly(good_id, id_value),
        "previousId": mostly(good_id, id_value),
        "category": mostly(good_id, id_value),
        "timestamp": st.one_of(good_time, time_value),
        "sentAt": st.one_of(good_time, time_value),
        "sent_at": st.one_of(good_time, time_value),
        "properties": mostly(properties_st, json_value),
        "traits": mostly(properties_st, json_value),
        "context": mostly(properties_st, json_value),
        "integrations": properties_st,
        "writeKey": id_value,
        "extra": json_value,
    }
    for key in draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=10)):
        event[key] = draw(fields[key])
    if "event" not in event and draw(st.booleans()):
        event["event"] = draw(st.sampled_from(NAMES))
    # usually give it an id, so the later rules get their turn
    if draw(st.integers(0, 3)) > 0:
        event[draw(st.sampled_from(["userId", "anonymous_id"]))] = draw(words)
    for snake, camel in SPELLINGS:
        mode = draw(st.integers(0, 6))
        if mode in (1, 2) and snake in event:
            event[camel] = event[snake]
        elif (
            mode == 3
            and snake in event
            and isinstance(event[snake], int)
            and not isinstance(event[snake], bool)
        ):
            event[camel] = float(event[snake])
    return event


@st.composite
def odd_request(draw: st.DrawFn) -> tuple[bytes, str | None]:
    events = draw(st.lists(odd_event(), min_size=0, max_size=6))
    shape = draw(st.sampled_from(["batch", "batch", "list", "single"]))
    if shape == "single":
        body: Any = events[0] if events else draw(odd_event())
        call_type = draw(st.sampled_from(CALL_TYPES))
    elif shape == "list":
        body, call_type = events, None
    else:
        body = {"batch": events}
        call_type = None
        for key, value in (
            ("sentAt", time_value),
            ("sent_at", time_value),
            ("context", mostly(properties_st, json_value)),
            ("writeKey", id_value),
        ):
            if draw(st.booleans()):
                body[key] = draw(value)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    return text.encode(), call_type


def test_generated_edge_cases_match() -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        odd_request(),
        structures_st(),
        st.booleans(),
        received_st,
        st.sampled_from([MAX_EVENT_BYTES] * 4 + [60, 150, 400]),
    )
    def run(
        case: tuple[bytes, str | None],
        structures: dict[str, Structure],
        reject: bool,
        received: int,
        limit: int,
    ) -> None:
        body, call_type = case
        seen[
            compare(
                body,
                call_type,
                structures=structures,
                reject_unknown=reject,
                received_at_us=received,
                max_event_bytes=limit,
            )
        ] += 1

    run()
    # only integers past 64 bits (and nothing else generated here) may fall back
    assert seen["native"] >= 0.8 * sum(seen.values()), seen


def test_times_and_skews_match() -> None:
    """Every time form of :func:`iso_text` and every epoch number, as the event's
    ``timestamp``, its ``sentAt`` or the batch's: readable or not, in range or not."""
    seen: Counter[str] = Counter()

    @settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
    @given(time_value, st.none() | time_value, st.none() | time_value, received_st)
    def run(timestamp: Any, sent: Any, batch_sent: Any, received: int) -> None:
        event = {"event": "e", "userId": "u", "timestamp": timestamp}
        if sent is not None:
            event["sentAt"] = sent
        body: dict[str, Any] = {"batch": [event]}
        if batch_sent is not None:
            body["sentAt"] = batch_sent
        seen[compare(json.dumps(body).encode(), None, received_at_us=received)] += 1

    run()
    # integers past 64 bits fall back; every other time is read natively or by Python's
    # own datetime from inside the compiled path
    assert seen["native"] >= 0.85 * sum(seen.values()), seen


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(number | odd_text | json_value, min_size=1, max_size=4),
    st.integers(-2, 1),
    st.booleans(),
)
def test_sizes_and_derived_ids_of_any_value(values: list[Any], slack: int, ascii: bool) -> None:
    """An id-less event's derived message id (canonical JSON: Python's float repr,
    ensure_ascii escapes) and its size (orjson's text) at the very limit: one byte under,
    at, and over it."""
    event = {"event": "e", "userId": "u", "properties": {str(i): v for i, v in enumerate(values)}}
    size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    body = json.dumps({"batch": [event]}, ensure_ascii=ascii).encode()
    # json.dumps and orjson differ on floats (1e-07 / 1e-7): the limit is near, not exact
    result = compare(body, None, received_at_us=RECEIVED, max_event_bytes=max(0, size + slack))
    big = any(isinstance(v, int) and not -(2**63) <= v < 2**64 for v in values)
    assert result == "native" or big


# ---------------------------------------------------------------------------------------
# bodies the compiled path must leave to Python (or read exactly)


@pytest.mark.parametrize(
    "body",
    [
        b'{"batch": [{"event": "e", "userId": "u", "properties": {"x": NaN}}]}',
        b'{"batch": [{"event": "e", "userId": "u", "properties": {"x": -Infinity}}]}',
        b'{"batch": [{"event": "e", "userId": "\\ud800"}]}',
        b'{"batch": [{"event": "e", "userId": "u", "n": 18446744073709551616}]}',
        b'{"batch": [{"event": "e", "userId": "u", "n": -9223372036854775809}]}',
        b'{"batch": [{"event": "e", "userId": "u", "n": 1e400}]}',
        b"\xef\xbb\xbf" + b'{"batch": []}',
        b'{"batch": [{"event": "e", "userId": "u\xff"}]}',
        b'{"batch": [' + b"[" * 200 + b"]" * 200 + b"]}",
        b'{"batch": {}}',
        b'{"batch": [], "context": []}',
        b'{"batch": [}',
        b"",
        b"42",
        b'{"batch": [{"event": "e", "userId": "u"}]} x',
    ],
)
def test_bodies_outside_the_compiled_path_fall_back(body: bytes) -> None:
    with pytest.raises(Fallback):
        parse_request(body, None)
    compare(body, None, received_at_us=RECEIVED)  # the Python path decides


@pytest.mark.parametrize(
    "body",
    [
        # a repeated key: the last value, in the first key's place (dict semantics)
        b'{"batch": [{"event": "a", "userId": "u", "event": "b",'
        b' "properties": {"y": 1, "x": 2, "y": 3}}]}',
        b'{"batch": [{"event": "e", "userId": "u", "properties": {"n": 18446744073709551615,'
        b' "m": -9223372036854775808, "f": 1e-7, "g": -0.0, "h": 1E2}}]}',
        b'{"batch": [{"event": "e", "userId": "u",'
        b' "properties": {"s": "\\u0000\\u001f\\u007f\\u2028\\ud83d\\ude00\\/"}}]}',
        b'{"batch": [{"event": "e", "userId": "u", "properties": '
        + b"[" * 100
        + b"]" * 100
        + b"}]}",
        b'[{"event": "e", "userId": "u"}, 1, "x", null, []]',
        b'{"batch": [], "context": null, "sentAt": null, "sent_at": "2024-01-01"}',
    ],
)
def test_bodies_read_exactly(body: bytes) -> None:
    assert compare(body, None, received_at_us=RECEIVED) == "native"


@pytest.mark.parametrize("call_type", CALL_TYPES)
@pytest.mark.parametrize("body", [b'"text"', b"null", b"[1]", b'{"writeKey": "k", "userId": "u"}'])
def test_single_calls_of_any_json(body: bytes, call_type: str) -> None:
    assert compare(body, call_type, received_at_us=RECEIVED) == "native"


def test_the_module_is_the_compiled_one() -> None:
    assert streamfold_edge.__name__ == "streamfold_edge"
    assert issubclass(Fallback, Exception)
    with pytest.raises(ValueError):
        parse_request(b"{}", "not-a-call")


def test_time_range_and_skew_messages_match() -> None:
    cases = [
        {"timestamp": "1969-12-31T23:59:59Z"},
        {"timestamp": "2024-05-03T00:00:00Z"},
        {"timestamp": "1899-12-31T23:59:59Z", "sentAt": "1899-12-31T23:59:59Z"},
        {"timestamp": "2300-01-01T00:00:00Z", "sentAt": "2300-01-01T00:00:00Z"},
        {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"},
        {"timestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"},
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        {"timestamp": 1e11 + 0.5},
        {"timestamp": 1714564800.123456},
        {"timestamp": "2024-05-01T10:00:00.1234567+01:30", "sentAt": "2024-05-01T10:00:01,5+01:30"},
    ]
    for extra in cases:
        event = {"event": "e", "userId": "u", **extra}
        body = json.dumps({"batch": [event]}).encode()
        assert compare(body, None, received_at_us=RECEIVED) == "native", extra
