"""The edge as a browser meets it, in process (issue 19): CORS on the ingestion routes only,
a system's allowed origins, write keys that only write and read tokens that only read,
and what analytics.js loads (its settings and bundle). Kafka and the key read model are
fakes (``test_ingest_segment``); Redis is a dict behind ``get``; the app is the real one.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from api.app import create_api
from api.deps import Services
from api.routes.browser import VENDOR
from pipeline.common.settings import Settings
from pipeline.projections.partner_keys.lookups import PARTNER, READ_TOKEN, SystemKey, hash_key
from tests.unit.api.test_ingest_segment import SYSTEMS, FakeIngest, FakeKeys

SHOP = "https://shop.example.com"
NARROW_KEY = "sk_live_narrow"
READ = "rt_live_reader"
REVOKED = "rt_live_revoked"
SYSTEMS_HERE = {
    **SYSTEMS,
    NARROW_KEY: SystemKey("sys-3", "par-1", True, allowed_origins=(SHOP, "https://*.example.org")),
}


class FakeRedis:
    """``get`` over a dict: the partner read model as ``partner_keys`` writes it."""

    def __init__(self) -> None:
        state = {"systems": [{"system_id": "sys-1"}, {"system_id": "sys-3"}]}
        self.data = {
            PARTNER.format(partner_id="par-1"): {"version": 3, "state": state},
            READ_TOKEN.format(token_hash=hash_key(READ)): {
                "token_id": "t-1", "partner_id": "par-1", "active": True},
            READ_TOKEN.format(token_hash=hash_key(REVOKED)): {
                "token_id": "t-2", "partner_id": "par-1", "active": False},
        }  # fmt: skip

    async def get(self, key: str) -> bytes | None:
        value = self.data.get(key)
        return None if value is None else json.dumps(value).encode()


class NoClickHouse:
    """Analytics must be refused before any query."""

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("queried ClickHouse for a caller that should have been refused")


class Keys(FakeKeys):
    async def resolve(self, api_key: str) -> SystemKey | None:
        return SYSTEMS_HERE.get(api_key)


def make_client(ingest: FakeIngest, **settings: Any) -> httpx.AsyncClient:
    config = Settings(env="test", jwt_secret="s" * 32, **settings)
    services = Services(
        settings=config,
        clickhouse=NoClickHouse(),
        redis=FakeRedis(),
        bus=None,
        keys=Keys(),
        ingest=ingest,
    )  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_api(services))
    return httpx.AsyncClient(transport=transport, base_url="http://collect.test")


@pytest.fixture
def ingest() -> FakeIngest:
    return FakeIngest(Keys())


@pytest.fixture
async def client(ingest: FakeIngest) -> Any:
    async with make_client(ingest) as c:
        yield c


def preflight(origin: str, method: str = "POST", headers: str = "authorization") -> dict:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


TRACK = {"event": "Viewed", "anonymousId": "a-1"}


class TestCors:
    @pytest.mark.parametrize("path", ["/v1/t", "/v1/batch", "/v1/b", "/v1/track", "/v1/i"])
    async def test_a_preflight_on_the_ingestion_routes(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        """analytics-next sends Authorization (Basic write key) and X-Retry-Count, so its
        calls are preflighted."""
        response = await client.options(
            path, headers=preflight(SHOP, headers="authorization,content-type,x-retry-count")
        )
        assert response.status_code == 204 and response.content == b""
        assert response.headers["access-control-allow-origin"] == "*"
        assert "POST" in response.headers["access-control-allow-methods"]
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "x-retry-count"} <= set(allowed.split(", "))
        assert int(response.headers["access-control-max-age"]) >= 600
        assert "access-control-allow-credentials" not in response.headers

    async def test_a_refused_preflight_is_a_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.options("/v1/t", headers=preflight(SHOP, method="DELETE"))
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/cors-preflight-refused"

    async def test_answers_carry_the_origin_rule_and_expose_retry_after(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        response = await client.post(
            "/v1/t", json={**TRACK, "writeKey": "sk_live_good"}, headers={"Origin": SHOP}
        )
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "*"
        assert "Retry-After" in response.headers["access-control-expose-headers"]
        assert "access-control-allow-credentials" not in response.headers
        ingest.allowed = False  # a 429 the page can read, Retry-After included
        response = await client.post(
            "/v1/t", json={**TRACK, "writeKey": "sk_live_good"}, headers={"Origin": SHOP}
        )
        assert response.status_code == 429 and response.headers["access-control-allow-origin"]

    @pytest.mark.parametrize(
        "path", ["/v1/analytics/events", "/api/admin/users", "/api/auth/token", "/readyz"]
    )
    async def test_read_and_admin_routes_send_no_cors_headers(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.options(path, headers=preflight(SHOP, method="GET"))
        assert "access-control-allow-origin" not in response.headers
        response = await client.get(path, headers={"Origin": SHOP})
        assert "access-control-allow-origin" not in response.headers

    async def test_unless_the_operator_lists_origins(self, ingest: FakeIngest) -> None:
        admin_ui = "https://admin.example.com"
        async with make_client(ingest, cors_origins=[admin_ui]) as client:
            response = await client.options(
                "/api/admin/users", headers=preflight(admin_ui, "GET", "authorization")
            )
            assert response.status_code == 204
            assert response.headers["access-control-allow-origin"] == admin_ui
            response = await client.options("/api/admin/users", headers=preflight(SHOP, "GET"))
            assert response.status_code == 400
            assert "access-control-allow-origin" not in response.headers
            response = await client.get("/readyz", headers={"Origin": SHOP})
            assert "access-control-allow-origin" not in response.headers


class TestAllowedOrigins:
    @pytest.mark.parametrize(
        "origin", [SHOP, "https://SHOP.example.com:443", "https://a.example.org", None]
    )
    async def test_an_allowed_origin_or_none(
        self, client: httpx.AsyncClient, ingest: FakeIngest, origin: str | None
    ) -> None:
        headers = {"Origin": origin} if origin else {}
        body = {**TRACK, "writeKey": NARROW_KEY}
        response = await client.post("/v1/t", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert len(ingest.published) == 1

    @pytest.mark.parametrize(
        "origin", ["https://evil.example.net", "http://shop.example.com", "https://example.org",
                   "null", "https://shop.example.com:8443"]
    )  # fmt: skip
    async def test_any_other_origin_is_refused_and_stores_nothing(
        self, client: httpx.AsyncClient, ingest: FakeIngest, origin: str
    ) -> None:
        body = {"batch": [TRACK, {"event": "bad"}], "writeKey": NARROW_KEY}
        response = await client.post("/v1/batch", json=body, headers={"Origin": origin})
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "origin-not-allowed"
        assert response.headers["access-control-allow-origin"] == "*"  # the page can read why
        assert ingest.published == [] and ingest.refused == [] and ingest.charged == []


class TestOnePurposePerSecret:
    @pytest.mark.parametrize(
        "headers",
        [{"Authorization": "Bearer sk_live_good"}, {"X-API-Key": "sk_live_good"},
         {"Authorization": "Basic c2tfbGl2ZV9nb29kOg=="}],
    )  # fmt: skip
    @pytest.mark.parametrize(
        "path",
        ["/v1/analytics/events", "/v1/analytics/stats", "/v1/analytics/timeseries",
         "/v1/analytics/funnel?steps=a&steps=b", "/v1/analytics/bounds",
         "/v1/analytics/rejections"],
    )  # fmt: skip
    async def test_a_write_key_reads_nothing(
        self, client: httpx.AsyncClient, path: str, headers: dict[str, str]
    ) -> None:
        response = await client.get(path, headers=headers)
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["type"] == "/problems/write-key-cannot-read" and body["use"] == "read-token"
        assert "rt_live_" in body["detail"]

    async def test_a_read_token_sends_nothing(
        self, client: httpx.AsyncClient, ingest: FakeIngest
    ) -> None:
        for headers, body in [
            ({"Authorization": f"Bearer {READ}"}, {"batch": [TRACK]}),
            ({}, {"batch": [TRACK], "writeKey": READ}),
        ]:
            response = await client.post("/v1/batch", json=body, headers=headers)
            assert response.status_code == 403, response.text
            assert response.json()["code"] == "read-token-cannot-write"
        assert ingest.published == []

    @pytest.mark.parametrize(
        ("token", "slug"), [(REVOKED, "revoked-token"), ("rt_live_nobody", "unknown-token")]
    )
    async def test_an_unknown_or_revoked_read_token(
        self, client: httpx.AsyncClient, token: str, slug: str
    ) -> None:
        response = await client.get(
            "/v1/analytics/bounds", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401 and response.json()["type"] == f"/problems/{slug}"

    async def test_a_read_token_sees_only_its_partners_systems(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get(
            "/v1/analytics/bounds?system=sys-other", headers={"Authorization": f"Bearer {READ}"}
        )
        assert response.status_code == 403, response.text


class TestAnalyticsJs:
    async def test_settings_point_segment_io_at_this_api(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/projects/sk_live_good/settings", headers={"Origin": SHOP})
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "*"
        segment = response.json()["integrations"]["Segment.io"]
        assert segment == {**segment, "apiKey": "sk_live_good", "apiHost": "collect.test/v1",
                           "protocol": "http"}  # fmt: skip
        assert response.json()["metrics"]["sampleRate"] == 0

    async def test_public_url_wins(self, ingest: FakeIngest) -> None:
        async with make_client(ingest, public_url="https://collect.example.com/") as client:
            response = await client.get("/v1/projects/sk_live_good/settings")
        segment = response.json()["integrations"]["Segment.io"]
        assert (segment["protocol"], segment["apiHost"]) == ("https", "collect.example.com/v1")

    @pytest.mark.parametrize("key", ["sk_live_revoked", "sk_live_unknown", READ])
    async def test_unknown_or_deactivated_keys_are_404(
        self, client: httpx.AsyncClient, key: str
    ) -> None:
        for path in (f"/v1/projects/{key}/settings", f"/analytics.js/v1/{key}/analytics.min.js"):
            response = await client.get(path)
            assert response.status_code == 404, response.text
            assert response.json()["code"] == "not-found"

    async def test_the_standalone_build_with_the_key_embedded(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/analytics.js/v1/sk_live_good/analytics.min.js")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert b'window.analyticsWriteKey="sk_live_good"' in response.content
        assert b"__WRITE_KEY__" not in response.content

    async def test_its_chunks(self, client: httpx.AsyncClient) -> None:
        chunks = sorted(p.name for p in VENDOR.glob("*.bundle.*.js"))
        assert chunks
        for name in chunks:
            response = await client.get(f"/analytics-next/bundles/{name}")
            assert response.status_code == 200 and response.content == (VENDOR / name).read_bytes()
            assert "immutable" in response.headers["cache-control"]
        for name in ["../standalone.js", "standalone.js", "x.bundle.0123456789abcdef0123.js"]:
            response = await client.get(f"/analytics-next/bundles/{name}")
            assert response.status_code == 404
