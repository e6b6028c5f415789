"""``Ingest.accept`` with the compiled core and without it: the same reply and the same
records on the same topics, byte for byte, for the same requests (issue 21: every path
stores the same rows and makes the same rejections). The core itself is held equal to the
Python path event by event in ``test_decode.py``; this holds the edge that wires it.

Kafka, Redis (the system's view) and the rate limits are fakes; the codec, the recorder
and both paths are the real ones.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import streamfold_edge

from connectors.ratelimit import Decision, Limit
from pipeline.common.problems import Problem
from pipeline.domain.tracking import RECORDED_EVENT_TYPE, RECORDED_SCHEMA_VERSION, CallType
from pipeline.edge.ingest import Ingest, SdkCall
from pipeline.edge.recording import Recorder, Structures
from pipeline.projections.partner_keys.lookups import SystemKey
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistry

CODEC = AvroCodec(SchemaRegistry.load())
KEY = "sk_live_paths"
SYSTEM = SystemKey("0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90", "par-1", True)
RECEIVED = datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=UTC)
PAGE_VIEW = json.dumps(
    {"type": "object", "required": ["path"], "properties": {"path": {"type": "string"}}}
)
VIEWS = {
    "no structures": {"unknown_events": "accept", "structures": {}},
    "required page_view, unknown rejected": {
        "unknown_events": "reject",
        "structures": {"page_view": {"json_schema": PAGE_VIEW, "required": True, "version": 3}},
    },
    "optional page_view": {
        "unknown_events": "accept",
        "structures": {"page_view": {"json_schema": PAGE_VIEW, "required": False, "version": 1}},
    },
}


class Keys:
    async def resolve(self, api_key: str) -> SystemKey | None:
        return SYSTEM if api_key == KEY else None


class View(Structures):
    def __init__(self, view: dict[str, Any], core: Any) -> None:
        super().__init__(None, core=core)  # type: ignore[arg-type]  # view() from memory
        self._fixed = view

    async def view(self, system_id: str) -> dict[str, Any] | None:
        return self._fixed


class Produced:
    """A producer whose deliveries are kept: (topic, key, value, headers) in order."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, Any]] = []

    def deliveries(self) -> Produced:
        return self

    def produce(self, topic: str, value: bytes, *, key: bytes | None = None,
                headers: Any = None) -> None:  # fmt: skip
        self.records.append((topic, key, value, headers))

    async def wait(self) -> None:
        return None


class Buckets:
    async def take(self, costs: Any, cost: int) -> Decision:
        return Decision(allowed=True, tokens_left=1e9, retry_after_s=0.0)


def edge(view: dict[str, Any], core: Any) -> tuple[Ingest, Produced]:
    produced = Produced()
    ingest = Ingest(
        produced,  # type: ignore[arg-type]
        Buckets(),  # type: ignore[arg-type]
        recorder=Recorder(View(view, core), CODEC, "streamfold-test"),
        keys=Keys(),  # type: ignore[arg-type]
        per_system=Limit(1, 1000),
        per_partner=Limit(1, 1000),
        max_body_bytes=1 << 20,
        core=core,
        fingerprint=CODEC.registry.fingerprint(RECORDED_EVENT_TYPE, RECORDED_SCHEMA_VERSION),
        clock=lambda: RECEIVED,
    )
    return ingest, produced


def answer(ingest: Ingest, call: SdkCall) -> tuple[int, Any]:
    import asyncio

    try:
        reply = asyncio.run(ingest.accept(call))
    except Problem as problem:
        return problem.status, (problem.slug, problem.detail, problem.extra)
    return reply.status, json.loads(reply.body)


PAGE = {"type": "page", "name": "page_view", "anonymousId": "a-1", "messageId": "m-page",
        "properties": {"path": "/docs", "title": "Docs"},
        "context": {"page": {"url": "https://shop.example.com/docs"}, "userAgent": "UA"},
        "timestamp": "2026-12-07T11:59:58.100Z", "sentAt": "2026-12-07T11:59:59Z"}  # fmt: skip
BATCHES = [
    {"batch": [PAGE, {**PAGE, "messageId": "m-bad", "properties": {"title": "no path"}},
               {"type": "track", "event": "Signed Up", "userId": "u-1", "properties": {"n": 1.5}},
               {"type": "track", "event": "no id"}, "not an object",
               {"type": "identify", "userId": "u-1", "traits": {"plan": "pro", "seats": 3}},
               {"type": "group", "userId": "u-1"},
               {"event": "page_view", "anonymous_id": "h", "properties": {"path": "/x"}}],
     "writeKey": KEY, "sentAt": "2026-12-07T12:00:01Z"},
    [{"event": "page_view", "user_id": "u-2", "properties": {"path": "/ü"},
      "timestamp": 1796644800}],
    {"batch": []},
]  # fmt: skip
SINGLES = [
    ("/v1/t", CallType.TRACK, {"event": "Clicked", "userId": "u", "writeKey": KEY}),
    ("/v1/p", CallType.PAGE, {**PAGE, "writeKey": KEY}),
    ("/v1/i", CallType.IDENTIFY, {"userId": "u", "traits": {"a": 1}, "writeKey": KEY}),
    ("/v1/t", CallType.TRACK, {"event": "no id", "writeKey": KEY}),
    (
        "/v1/t",
        CallType.TRACK,
        {"event": "late", "userId": "u", "writeKey": KEY, "timestamp": "2099-01-01T00:00:00Z"},
    ),
    ("/v1/i", CallType.IDENTIFY, {"type": "track", "event": "e", "userId": "u", "writeKey": KEY}),
]


def calls() -> list[tuple[str, SdkCall]]:
    out = []
    for i, body in enumerate(BATCHES):
        raw = json.dumps(body).encode()
        out.append((f"batch {i}", SdkCall(raw, key=KEY)))
        out.append((f"batch {i} gzip", SdkCall(gzip.compress(raw), "gzip", KEY)))
    for path, call_type, body in SINGLES:
        raw = json.dumps(body).encode()
        out.append((f"{path} {body.get('event', '')}", SdkCall(raw, call_type=call_type)))
    # left to the Python path by the core: NaN, a lone surrogate; and not JSON at all
    out.append(("nan", SdkCall(b'{"batch": [{"event": "e", "userId": "u", "v": NaN}]}', key=KEY)))
    out.append(("surrogate", SdkCall(b'[{"event": "\\ud800", "userId": "u"}]', key=KEY)))
    out.append(("not json", SdkCall(b'{"batch": [', key=KEY)))
    return out


@pytest.mark.parametrize("view_name", list(VIEWS))
@pytest.mark.parametrize(("name", "call"), calls(), ids=[n for n, _ in calls()])
def test_both_paths_answer_and_produce_alike(view_name: str, name: str, call: SdkCall) -> None:
    python, python_out = edge(VIEWS[view_name], None)
    compiled, compiled_out = edge(VIEWS[view_name], streamfold_edge)
    assert answer(compiled, call) == answer(python, call)
    # per topic, in order: which topic a record lands on first does not matter to anyone
    assert by_topic(compiled_out.records) == by_topic(python_out.records)


def by_topic(records: list[tuple[str, Any, bytes, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for topic, *rest in records:
        out.setdefault(topic, []).append(tuple(rest))
    return out


def test_the_compiled_path_is_the_one_taken() -> None:
    """Not a vacuous pass: for an ordinary batch the core decides (no Python decoding)."""
    compiled, produced = edge(VIEWS["required page_view, unknown rejected"], streamfold_edge)
    import pipeline.edge.ingest as module

    taken = []
    original = module.decode_events
    module.decode_events = lambda *a, **k: taken.append(1) or original(*a, **k)  # type: ignore[assignment]
    try:
        status, _ = answer(compiled, SdkCall(json.dumps(BATCHES[0]).encode(), key=KEY))
    finally:
        module.decode_events = original  # type: ignore[assignment]
    assert status == 200 and taken == [] and produced.records


def test_the_setting_chooses_the_path() -> None:
    from pipeline.common import compiled as core

    assert core.load("auto") is streamfold_edge
    assert core.load("compiled") is streamfold_edge
    assert core.load("python") is None
