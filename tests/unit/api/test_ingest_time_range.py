"""A client time the store does not hold: a 422 on the single-call routes, a rejected
entry (reason ``timestamp_out_of_range``, the range in the message) in a batch's 200,
beside the accepted events (issue 7). Fakes for Kafka, Redis and the keys, as in
``test_ingest_segment.py``; the app is the real one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.unit.api.test_ingest_segment import KEY, FakeIngest, ingest_client

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def ingest() -> FakeIngest:
    return FakeIngest()


@pytest.fixture
async def client(ingest: FakeIngest) -> Any:
    async with ingest_client(ingest) as c:
        yield c


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"])
async def test_a_single_call_out_of_range_is_a_422_naming_the_range(
    client: httpx.AsyncClient, ingest: FakeIngest, timestamp: str
) -> None:
    response = await client.post(
        "/v1/track", json={"event": "e", "userId": "u", "timestamp": timestamp}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "/problems/timestamp-out-of-range"
    assert body["reason"] == "timestamp_out_of_range"
    assert "is outside the accepted range 1970-01-01T00:00:00.000Z to " in body["detail"]
    assert ingest.published == []


async def test_in_a_batch_only_that_event_is_refused(
    client: httpx.AsyncClient, ingest: FakeIngest
) -> None:
    months = [f"{2000 + m // 12}-{m % 12 + 1:02d}-15T00:00:00Z" for m in range(101)]
    batch = [{"event": "e", "userId": "u", "timestamp": t} for t in months]
    batch.insert(3, {"event": "e", "userId": "u", "timestamp": "0001-01-01T00:00:00Z"})
    response = await client.post("/v1/batch", json={"batch": batch}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 101 and body["rejected"] == 1
    rejected = body["results"][3]
    assert rejected["status"] == "rejected" and rejected["reason"] == "timestamp_out_of_range"
    assert rejected["message"].startswith(
        "timestamp 0001-01-01T00:00:00.000Z is outside the accepted range "
        "1970-01-01T00:00:00.000Z to "
    )
    assert len(ingest.published) == 101
