"""The analytics routes over a fake ClickHouse: unknown parameters, default ranges, bounds."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import deps, problems
from api.problems import Problem
from api.routes import analytics
from pipeline.projections.tracking import queries as q

NEWEST = datetime(2015, 5, 20, 21, 5, tzinfo=UTC)  # the Apache demo log's last minute


@dataclass
class FakeClickHouse:
    """Answers each query by the table and shape it reads; records every call."""

    newest: datetime | None = NEWEST
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        self.calls.append((sql, dict(params or {})))
        if "AS newest" in sql:
            return [{"newest": self.newest}]
        if "AS first_at" in sql and "unique_users" not in sql:
            return [{"events": 3, "first_at": datetime(1995, 8, 1, tzinfo=UTC),
                     "last_at": NEWEST}]  # fmt: skip
        return []

    def series_params(self) -> dict[str, Any]:
        (params,) = [p for sql, p in self.calls if "GROUP BY bucket" in sql]
        return params


def make_client(
    clickhouse: FakeClickHouse, *, scope: deps.Scope | None = None
) -> httpx.AsyncClient:
    """The analytics router alone, in process; ``scope`` replaces authentication."""
    app = FastAPI()
    problems.install(app)
    app.include_router(analytics.router)
    app.state.services = SimpleNamespace(clickhouse=clickhouse)
    if scope is not None:
        app.dependency_overrides[deps._scope] = lambda: scope
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


@pytest.fixture
def clickhouse() -> FakeClickHouse:
    return FakeClickHouse()


@pytest.fixture
def client(clickhouse: FakeClickHouse) -> httpx.AsyncClient:
    return make_client(clickhouse, scope=deps.Scope(None))


# -- unknown query parameters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "accepted"),
    [
        ("/v1/analytics/events",
         ["system", "event", "start", "end", "user_id", "anonymous_id", "limit", "cursor"]),
        ("/v1/analytics/stats", ["system", "start", "end"]),
        ("/v1/analytics/timeseries", ["system", "event", "start", "end", "bucket"]),
        ("/v1/analytics/funnel", ["system", "steps", "window_s", "start", "end"]),
        ("/v1/analytics/rejections", ["system", "limit"]),
        ("/v1/analytics/bounds", ["system"]),
    ],
)  # fmt: skip
async def test_every_route_refuses_unknown_parameters(
    client: httpx.AsyncClient, clickhouse: FakeClickHouse, path: str, accepted: list[str]
) -> None:
    response = await client.get(path, params={"from": "2015-05-17", "to": "2015-05-18"})
    assert response.status_code == 422
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    body = response.json()
    assert body["type"] == "/problems/unknown-parameter" and body["instance"] == path
    assert body["unknown"] == ["from", "to"] and body["accepted"] == accepted
    assert all(name in body["detail"] for name in ["from", "to", *accepted])
    assert clickhouse.calls == []  # refused before any query ran


async def test_known_parameters_pass(client: httpx.AsyncClient) -> None:
    ok = await client.get("/v1/analytics/funnel", params={"system": "s", "steps": ["a", "b"]})
    assert ok.status_code == 200, ok.text
    assert (await client.get("/v1/analytics/bounds")).status_code == 200


async def test_credentials_are_checked_before_parameter_names(clickhouse: FakeClickHouse) -> None:
    # no override of the scope: the real dependency wants a key or an admin token
    response = await make_client(clickhouse).get("/v1/analytics/stats", params={"from": "x"})
    assert response.status_code == 401


def test_check_known_params_names_each_unknown_once() -> None:
    analytics.check_known_params(["a", "b", "a"], ["a", "b", "c"])
    with pytest.raises(Problem) as exc:
        analytics.check_known_params(["z", "a", "z"], ["a"])
    assert exc.value.status == 422 and exc.value.extra["unknown"] == ["z"]
    assert exc.value.detail == "unknown query parameter z; this route accepts: a"


# -- time series default range -----------------------------------------------------------


@pytest.mark.parametrize("bucket", ["minute", "hour", "day", "week"])
async def test_timeseries_defaults_to_the_buckets_up_to_the_newest_data(
    client: httpx.AsyncClient, clickhouse: FakeClickHouse, bucket: q.Bucket
) -> None:
    response = await client.get("/v1/analytics/timeseries", params={"bucket": bucket})
    assert response.status_code == 200, response.text
    params = clickhouse.series_params()
    start, end = params["start"], params["end"]
    assert q.bucket_count(start, end, bucket) == q.DEFAULT_BUCKETS[bucket]
    assert start == q.bucket_floor(start, bucket) and end == q.bucket_floor(end, bucket)
    assert end - timedelta(seconds=q.BUCKET_SECONDS[bucket]) <= NEWEST < end


async def test_timeseries_without_data_is_empty(clickhouse: FakeClickHouse) -> None:
    clickhouse.newest = None
    client = make_client(clickhouse, scope=deps.Scope(None))
    assert (await client.get("/v1/analytics/timeseries")).json() == []
    assert not any("GROUP BY bucket" in sql for sql, _ in clickhouse.calls)


async def test_timeseries_given_bounds_are_used_as_given(
    client: httpx.AsyncClient, clickhouse: FakeClickHouse
) -> None:
    start, end = "2015-05-17T10:30:00+00:00", "2015-05-18T00:00:00+00:00"
    await client.get("/v1/analytics/timeseries", params={"start": start, "end": end})
    assert not any("AS newest" in sql for sql, _ in clickhouse.calls)  # nothing to look up
    params = clickhouse.series_params()
    assert (params["start"], params["end"]) == tuple(map(datetime.fromisoformat, (start, end)))


async def test_timeseries_over_the_bucket_limit_is_still_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/analytics/timeseries",
        params={"start": "1995-08-01T00:00:00", "end": "2015-05-21T00:00:00", "bucket": "hour"},
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/too-many-buckets"


async def test_bounds_reports_the_scope(clickhouse: FakeClickHouse) -> None:
    client = make_client(clickhouse, scope=deps.Scope(frozenset({"s1", "s2"})))
    body = (await client.get("/v1/analytics/bounds")).json()
    assert body["events"] == 3 and datetime.fromisoformat(body["last_at"]) == NEWEST
    denied = await client.get("/v1/analytics/bounds", params={"system": "s3"})
    assert denied.status_code == 403
    (sql, params), *_ = clickhouse.calls
    assert "FROM tracking_events" in sql and params["systems"] == ["s1", "s2"]


# -- times outside what ClickHouse holds (issue 7, section 3: these were 500s) ------------


@pytest.mark.parametrize(
    "query",
    [
        "/v1/analytics/timeseries?end=0001-01-01T00:00:07Z",  # the reproduction
        "/v1/analytics/timeseries?start=0999-12-31T23:59:59Z",
        "/v1/analytics/stats?start=9999-12-31T00:00:00Z",
        "/v1/analytics/events?end=0001-01-01T00:00:00%2B01:00",  # before year 1 in UTC
        "/v1/analytics/funnel?steps=a&steps=b&window_s=60&start=1000-01-01T00:00:00Z",
    ],
)
async def test_a_time_outside_the_store_is_a_422_not_a_500(
    client: httpx.AsyncClient, clickhouse: FakeClickHouse, query: str
) -> None:
    response = await client.get(query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert clickhouse.calls == []  # refused before any query


async def test_a_cursor_outside_the_store_is_a_400(client: httpx.AsyncClient) -> None:
    forged = base64.urlsafe_b64encode(
        json.dumps({"t": "0001-01-01T00:00:00+00:00", "id": "x"}).encode()
    ).decode()
    response = await client.get("/v1/analytics/events", params={"cursor": forged})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
