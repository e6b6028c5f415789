"""The ingestion routes' HTTP edge, in process: where the key comes from, gzip bodies
(limit, bomb, corruption), Segment's single-call routes and the statuses Segment's
libraries act on. Kafka, Redis and the key read model are fakes; the app is the real one.
"""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.app import create_api
from api.deps import Services
from api.problems import Problem
from connectors.exceptions import KafkaDeliveryError
from connectors.ratelimit import Decision, Limit
from pipeline.common.settings import Settings
from pipeline.domain.tracking import TrackedEvent
from pipeline.edge.ingest import Ingest, gunzip
from pipeline.projections.partner_keys.lookups import SystemKey

LIMIT = 64 * 1024
KEY = "sk_live_good"
SYSTEM = SystemKey(system_id="sys-1", partner_id="par-1", active=True)
SYSTEMS = {KEY: SYSTEM, "sk_live_revoked": SystemKey("sys-2", "par-1", active=False)}


class FakeKeys:
    async def resolve(self, api_key: str) -> SystemKey | None:
        return SYSTEMS.get(api_key)


class FakeIngest(Ingest):
    """The real edge, with its rate limits and Kafka faked (and recording: every event
    is recorded)."""

    def __init__(self, keys: Any = None, max_body_bytes: int = LIMIT) -> None:
        super().__init__(
            None, None, recorder=None, keys=keys or FakeKeys(),  # type: ignore[arg-type]
            per_system=Limit(1, 1000), per_partner=Limit(1, 1000), max_body_bytes=max_body_bytes,
        )  # fmt: skip
        self.allowed = True
        self.limited_by = "system"
        self.charged: list[tuple[SystemKey, int]] = []
        self.published: list[TrackedEvent] = []
        self.refused: list[Any] = []
        self.kafka_down = False

    async def charge(self, system: SystemKey, events: int) -> Decision:
        self.charged.append((system, events))
        if self.allowed:
            return Decision(allowed=True, tokens_left=100.0, retry_after_s=0.0)
        return Decision(False, 0.0, 2.2, self.limited_by)

    async def publish(
        self,
        events: list[TrackedEvent],
        refused: Any = (),
        *,
        system: SystemKey | None = None,
        received_at: Any = None,
    ) -> int:
        """As ``pipeline.edge.ingest.Ingest.publish``: every event recorded at the edge."""
        if self.kafka_down:
            raise KafkaDeliveryError("no broker acknowledged")
        self.published.extend(events)
        self.refused.extend(refused)
        return len(events)


@pytest.fixture
def ingest() -> FakeIngest:
    return FakeIngest()


def ingest_client(ingest: FakeIngest, **settings: Any) -> httpx.AsyncClient:
    """A client of the real app over ``ingest`` and :class:`FakeKeys` (no Kafka, Redis or
    ClickHouse); ``settings`` are the test settings' own values."""
    config = Settings(env="test", jwt_secret="s" * 32, **settings)
    services = Services(
        settings=config, clickhouse=None, redis=None, bus=None, keys=FakeKeys(), ingest=ingest
    )  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_api(services))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.fixture
async def client(ingest: FakeIngest) -> Any:
    async with ingest_client(ingest, max_body_bytes=LIMIT) as c:
        yield c


def basic(user: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def segment_batch(*events: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"batch": list(events), "sentAt": datetime.now(UTC).isoformat(), **top}


TRACK = {"type": "track", "event": "Signup", "userId": "u-1", "messageId": "m-1"}


def problem(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"/problems/{slug}"


class TestKeySources:
    @pytest.mark.parametrize(
        ("headers", "body"),
        [
            (basic(KEY), segment_batch(TRACK)),  # segment-analytics-python: Basic + writeKey
            (basic(KEY), segment_batch(TRACK, writeKey=KEY)),
            (basic(KEY, "ignored"), segment_batch(TRACK)),
            ({"Authorization": "Basic " + base64.b64encode(KEY.encode()).decode()},
             segment_batch(TRACK)),  # no colon: the key alone
            ({}, segment_batch(TRACK, writeKey=KEY)),
            ({"Authorization": "Bearer not-a-key-but-an-oauth-token"},
             segment_batch(TRACK, writeKey=KEY)),
            ({"Authorization": f"Bearer {KEY}"}, {"batch": [TRACK]}),
            ({"X-API-Key": KEY}, [TRACK]),
        ],
    )  # fmt: skip
    async def test_accepted(
        self, client: httpx.AsyncClient, headers: dict[str, str], body: Any
    ) -> None:
        response = await client.post("/v1/batch", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1

    async def test_write_key_of_a_single_call(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        body = {"userId": "u-1", "traits": {"plan": "pro"}, "writeKey": KEY}
        response = await client.post("/v1/identify", json=body)
        assert response.status_code == 200, response.text
        assert [e.type for e in ingest.published] == ["identify"]

    @pytest.mark.parametrize(
        ("headers", "body", "slug"),
        [
            ({}, segment_batch(TRACK), "unauthorized"),
            ({"Authorization": "Basic !!!not base64"}, segment_batch(TRACK), "unauthorized"),
            (basic(""), segment_batch(TRACK), "unauthorized"),
            (basic("sk_live_unknown"), segment_batch(TRACK), "unknown-key"),
            ({}, segment_batch(TRACK, writeKey="sk_live_unknown"), "unknown-key"),
            (basic("sk_live_revoked"), segment_batch(TRACK), "revoked-key"),
            (basic(KEY), segment_batch(TRACK, writeKey="sk_live_revoked"), "conflicting-keys"),
            ({}, segment_batch(TRACK, writeKey=7), "unauthorized"),
        ],
    )
    async def test_refused(
        self, client: httpx.AsyncClient, headers: dict[str, str], body: Any, slug: str
    ) -> None:
        response = await client.post("/v1/batch", json=body, headers=headers)
        problem(response, 401, slug)
        assert response.headers["www-authenticate"] == "Bearer"


class TestGzip:
    async def test_a_gzip_batch(self, client: httpx.AsyncClient, ingest: FakeIngest) -> None:
        body = gzip.compress(json.dumps(segment_batch(TRACK)).encode())
        headers = {**basic(KEY), "Content-Encoding": "gzip", "Content-Type": "application/json"}
        response = await client.post("/v1/batch", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert [e.message_id for e in ingest.published] == ["m-1"]

    async def test_the_limit_applies_to_the_decompressed_body(
        self, client: httpx.AsyncClient
    ) -> None:
        padding = " " * LIMIT  # compresses to almost nothing
        body = gzip.compress(json.dumps(segment_batch(TRACK, pad=padding)).encode())
        assert len(body) < LIMIT // 10
        headers = {**basic(KEY), "Content-Encoding": "gzip"}
        problem(await client.post("/v1/batch", content=body, headers=headers), 413, "too-large")

    @pytest.mark.parametrize(
        "body",
        [b"not gzip at all", gzip.compress(b'{"batch": []}')[:-6], b"",
         gzip.compress(b'{"batch": []}') + b"trailing garbage"],
    )  # fmt: skip
    async def test_a_corrupt_body_is_a_400(self, client: httpx.AsyncClient, body: bytes) -> None:
        headers = {**basic(KEY), "Content-Encoding": "gzip"}
        response = await client.post("/v1/batch", content=body, headers=headers)
        problem(response, 400, "malformed-gzip")

    async def test_other_encodings_are_refused(self, client: httpx.AsyncClient) -> None:
        headers = {**basic(KEY), "Content-Encoding": "br"}
        response = await client.post("/v1/batch", content=b"{}", headers=headers)
        problem(response, 415, "unsupported-encoding")


def bomb(inflated: int) -> bytes:
    """gzip of ``inflated`` zero bytes, made in 1 MiB steps (never held whole)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join([*parts, packer.flush()])


class TestGunzip:
    def test_round_trip_and_concatenated_members(self) -> None:
        assert gunzip(gzip.compress(b"abc"), 3) == b"abc"
        assert gunzip(gzip.compress(b"ab") + gzip.compress(b"cd"), 4) == b"abcd"

    def test_the_limit_is_inclusive(self) -> None:
        data = b"x" * 100
        assert gunzip(gzip.compress(data), 100) == data
        with pytest.raises(Problem) as info:
            gunzip(gzip.compress(data), 99)
        assert info.value.status == 413
        with pytest.raises(Problem):  # the limit covers all members together
            gunzip(gzip.compress(data[:60]) + gzip.compress(data[60:]), 99)

    def test_a_bomb_stops_at_the_limit_in_bounded_memory(self) -> None:
        payload = bomb(256 << 20)  # 256 MiB of zeros in ~250 KiB
        assert len(payload) < 1 << 20
        tracemalloc.start()
        try:
            with pytest.raises(Problem) as info:
                gunzip(payload, LIMIT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert info.value.status == 413 and info.value.slug == "too-large"
        assert peak < 8 * LIMIT, f"peak {peak} bytes for a {LIMIT}-byte limit"

    @pytest.mark.parametrize("data", [b"", b"\x1f\x8b", b"plain", gzip.compress(b"x")[:-1]])
    def test_corrupt_or_cut_short(self, data: bytes) -> None:
        with pytest.raises(Problem) as info:
            gunzip(data, LIMIT)
        assert info.value.status == 400 and info.value.slug == "malformed-gzip"


class TestSegmentRoutesAndStatuses:
    @pytest.mark.parametrize(
        ("path", "body", "event"),
        [
            ("/v1/track", {"event": "Signup", "userId": "u"}, "Signup"),
            ("/v1/identify", {"userId": "u", "traits": {"a": 1}}, "identify"),
            ("/v1/page", {"userId": "u", "name": "Home"}, "Home"),
            ("/v1/screen", {"userId": "u"}, "screen"),
            ("/v1/group", {"userId": "u", "groupId": "g"}, "group"),
            ("/v1/alias", {"userId": "u", "previousId": "a"}, "alias"),
            # analytics.js posts each call to its type's first letter
            ("/v1/t", {"event": "Signup", "userId": "u"}, "Signup"),
            ("/v1/i", {"userId": "u", "traits": {"a": 1}}, "identify"),
            ("/v1/p", {"userId": "u", "name": "Home"}, "Home"),
            ("/v1/s", {"userId": "u"}, "screen"),
            ("/v1/g", {"userId": "u", "groupId": "g"}, "group"),
            ("/v1/a", {"userId": "u", "previousId": "a"}, "alias"),
        ],
    )
    async def test_single_calls_set_their_type(
        self, client: httpx.AsyncClient, ingest: FakeIngest, path: str, body: Any, event: str
    ) -> None:
        response = await client.post(path, json=body, headers=basic(KEY))
        assert response.status_code == 200, response.text
        [stored] = ingest.published
        assert stored.type.value[0] == path.rsplit("/", 1)[1][0] and stored.event == event
        assert response.json() == {
            "success": True, "message_id": stored.message_id, "status": "accepted"}  # fmt: skip

    async def test_a_text_plain_body_with_the_key_inside(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        """Browsers send text/plain (no preflight), navigator.sendBeacon too."""
        body = json.dumps({"event": "Left", "anonymousId": "a", "writeKey": KEY})
        response = await client.post(
            "/v1/t", content=body, headers={"content-type": "text/plain;charset=UTF-8"}
        )
        assert response.status_code == 200, response.text
        assert [e.event for e in ingest.published] == ["Left"]

    async def test_a_refused_single_call_is_listed_with_its_reason(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        response = await client.post("/v1/t", json={"event": "no id"}, headers=basic(KEY))
        problem(response, 400, "missing-id")
        [(raw, rejection)] = ingest.refused
        assert raw == {"event": "no id"} and rejection.reason == "missing_id"

    async def test_segment_error_bodies_carry_code_and_message(
        self, client: httpx.AsyncClient
    ) -> None:
        """segment-analytics-python raises APIError(status, payload["code"],
        payload["message"]) for a 4xx body."""
        response = await client.post("/v1/batch", content=b"{", headers=basic(KEY))
        body = response.json()
        assert (body["code"], body["message"]) == ("malformed-json", body["detail"])
        response = await client.post("/v1/t", json={"event": "e", "userId": "u"})
        assert response.json()["code"] == "unauthorized"

    async def test_a_single_call_of_another_type_is_a_400(self, client: httpx.AsyncClient) -> None:
        body = {"type": "track", "event": "e", "userId": "u"}
        response = await client.post("/v1/identify", json=body, headers=basic(KEY))
        problem(response, 400, "malformed")

    async def test_refused_events_do_not_fail_the_batch(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        """segment-analytics-python drops a whole batch on a 400: one bad call must not
        take the good ones with it."""
        body = segment_batch(
            TRACK,
            {"type": "teleport", "userId": "u"},
            {"type": "group", "userId": "u"},  # no groupId
            {"type": "identify", "traits": {}},  # no id
            {"type": "alias", "userId": "u", "previousId": "a", "messageId": "m-2"},
        )
        response = await client.post("/v1/batch", json=body, headers=basic(KEY))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["success"] is True
        assert (answer["accepted"], answer["rejected"]) == (2, 3)
        assert [r["status"] for r in answer["results"]] == [
            "accepted", "rejected", "rejected", "rejected", "accepted"]  # fmt: skip
        assert answer["results"][3]["reason"] == "missing_id"
        assert [e.message_id for e in ingest.published] == ["m-1", "m-2"]
        # and dead-lettered with the reasons, so /rejected-events lists them too
        assert [(raw, r.reason) for raw, r in ingest.refused] == [
            (body["batch"][1], "malformed"), (body["batch"][2], "malformed"),
            (body["batch"][3], "missing_id")]  # fmt: skip

    async def test_the_mobile_batch_path(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/v1/b", json=segment_batch(TRACK), headers=basic(KEY))
        assert response.status_code == 200, response.text

    async def test_a_rate_limit_is_a_429_with_retry_after(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        """The SDK re-queues a batch on a retryable status with Retry-After > 0."""
        ingest.allowed = False
        response = await client.post("/v1/batch", json=segment_batch(TRACK), headers=basic(KEY))
        problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1

    async def test_kafka_down_is_a_503_with_retry_after(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        """Retried by the SDK: re-queued, not counted against its retries."""
        ingest.kafka_down = True
        response = await client.post("/v1/batch", json=segment_batch(TRACK), headers=basic(KEY))
        problem(response, 503, "kafka-unavailable")
        assert response.headers["retry-after"] == "1"
        assert "no broker acknowledged" not in response.text  # the driver's text is logged

    async def test_json_nested_past_the_parser_is_a_400(self, client: httpx.AsyncClient) -> None:
        body = b"[" * 30_000 + b"]" * 30_000
        response = await client.post("/v1/batch", content=body, headers=basic(KEY))
        problem(response, 400, "malformed-json")
        assert "recursion" not in response.json()["detail"]  # Python's text is not the API's


class TestRateLimitCharges:
    """Issue 7, section 4: every submitted event is charged, accepted or not, so a flood
    of invalid events is not free; refusals name the bucket (system or partner)."""

    async def test_every_submitted_event_is_charged(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        body = segment_batch(TRACK, {"type": "track", "event": "e"}, {"type": "bogus"})
        response = await client.post("/v1/batch", json=body, headers=basic(KEY))
        assert response.status_code == 200 and response.json()["rejected"] == 2
        assert ingest.charged == [(SYSTEM, 3)]

    async def test_a_batch_of_rejected_events_is_charged_and_can_be_refused(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        rejected = segment_batch(*[{"type": "track", "event": "no id"}] * 5)
        response = await client.post("/v1/batch", json=rejected, headers=basic(KEY))
        assert response.status_code == 200 and response.json()["accepted"] == 0
        assert ingest.charged == [(SYSTEM, 5)]
        ingest.allowed = False
        response = await client.post("/v1/batch", json=rejected, headers=basic(KEY))
        problem(response, 429, "rate-limited")
        assert int(response.headers["retry-after"]) >= 1

    async def test_a_rejected_single_call_is_charged(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        response = await client.post("/v1/track", json={"event": "no id"}, headers=basic(KEY))
        problem(response, 400, "missing-id")
        ingest.allowed = False
        response = await client.post("/v1/track", json={"event": "no id"}, headers=basic(KEY))
        problem(response, 429, "rate-limited")
        assert [cost for _, cost in ingest.charged] == [1, 1]

    async def test_nothing_is_decoded_or_published_past_the_limit(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        ingest.allowed = False
        response = await client.post("/v1/batch", json=segment_batch(TRACK), headers=basic(KEY))
        problem(response, 429, "rate-limited")
        assert ingest.published == []

    async def test_the_partner_limit_says_so(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        ingest.allowed, ingest.limited_by = False, "partner"
        response = await client.post("/v1/batch", json=segment_batch(TRACK), headers=basic(KEY))
        problem(response, 429, "rate-limited")
        assert response.json()["limit"] == "partner"
        assert "partner" in response.json()["detail"]

    async def test_an_empty_batch_costs_one(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        response = await client.post("/v1/batch", json=segment_batch(), headers=basic(KEY))
        assert response.status_code == 200
        assert [cost for _, cost in ingest.charged] == [1]

    async def test_a_batch_over_the_event_limit_is_refused_before_charging(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        """A 413 tells the SDK to drop the batch; charging it first could turn it into a
        429 that the SDK retries forever."""
        body = [{"event": "e", "userId": "u"}] * 1001
        response = await client.post("/v1/batch", json=body, headers=basic(KEY))
        problem(response, 413, "too-many-events")
        assert ingest.charged == []


class TestBadInput:
    """Issue 7, section 3: input that used to be a 500."""

    async def test_a_lone_surrogate_rejects_its_event_only(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        # "\ud800" is valid JSON text but no Unicode scalar value: not encodable as UTF-8
        # (Avro strings, Kafka), so it must not reach the producer
        body = (
            '{"batch":[{"event":"\\ud800","userId":"u","messageId":"m-bad"},'
            '{"event":"ok","userId":"u","messageId":"m-ok"},'
            '{"event":"ok","userId":"u","properties":{"\\udc00":1}},'
            '{"event":"ok","userId":"\\ud800x"}]}'
        )
        response = await client.post(
            "/v1/batch", content=body, headers={**basic(KEY), "content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["accepted"], answer["rejected"]) == (1, 3)
        assert [r["status"] for r in answer["results"]] == [
            "rejected", "accepted", "rejected", "rejected"]  # fmt: skip
        assert {r.get("reason") for r in answer["results"]} == {"malformed", None}
        assert [e.message_id for e in ingest.published] == ["m-ok"]

    async def test_a_lone_surrogate_in_a_single_call_is_a_400(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        response = await client.post(
            "/v1/track",
            content='{"event":"\\ud800","userId":"u"}',
            headers={**basic(KEY), "content-type": "application/json"},
        )
        problem(response, 400, "malformed")
        assert ingest.published == []

    @pytest.mark.parametrize(
        "path", ["/api/admin/users", "/api/admin/partners", "/api/admin/sql", "/api/auth/token"]
    )
    async def test_json_nested_past_the_parser_is_a_400_on_every_json_route(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """FastAPI parses the body before the route's dependencies (authentication): a
        RecursionError there must be a 4xx problem, not a 500."""
        body = b'{"a":' * 30_000 + b"1" + b"}" * 30_000
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
