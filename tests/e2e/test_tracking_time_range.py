"""Client times and many-month batches through a real ``streamfold serve`` (issue 7).

Before: one ``/v1/batch`` of 101 events in different months stopped event storage for
every partner (the sink retried ClickHouse's code 252 forever, ``/readyz`` stayed green),
and years 1 and 9999 were accepted and landed in the per-minute view as 1970 and 2106.
The sink's parts (chunks, refusals, zombie writers, a stuck consumer in ``/readyz``) are
driven one by one in ``tests/integration/test_sink_hardening.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from pipeline.common import topics
from pipeline.domain.tracking import TrackedEvent
from tests.e2e.test_tracking import new_system, post_batch
from tests.support import ServeProcess, sql, wait_for

pytestmark = pytest.mark.e2e


def count(admin: httpx.Client, system_id: str) -> int:
    query = f"SELECT count() AS n FROM tracking_events WHERE system_id = '{system_id}'"
    return sql(admin, query)[0]["n"]


def test_a_backfill_over_101_months_is_stored_and_storage_goes_on(
    admin: httpx.Client, server: ServeProcess
) -> None:
    system = new_system(admin)
    sid, key = system["system_id"], system["api_key"]
    months = [datetime(2005, 1, 10, tzinfo=UTC) + timedelta(days=31 * m) for m in range(120)]
    backfill = [
        {"event": "page_view", "anonymous_id": f"h{m % 9}", "message_id": f"back-{m}",
         "timestamp": t.isoformat(), "properties": {"path": "/"}}
        for m, t in enumerate(months)
    ]  # fmt: skip
    out_of_range = [
        {"event": "page_view", "anonymous_id": "h", "message_id": "year-1",
         "timestamp": "0001-01-01T00:00:00Z", "properties": {"path": "/"}},
        {"event": "page_view", "anonymous_id": "h", "message_id": "year-9999",
         "timestamp": "9999-12-31T00:00:00Z", "properties": {"path": "/"}},
        {"event": "page_view", "anonymous_id": "h", "message_id": "in-2-days",
         "timestamp": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
         "properties": {"path": "/"}},
    ]  # fmt: skip
    answer = post_batch(server, key, backfill + out_of_range)
    assert answer["accepted"] == 120 and answer["rejected"] == 3, answer
    refused = answer["results"][120:]
    assert {r["reason"] for r in refused} == {"timestamp_out_of_range"}
    assert all("outside the accepted range 1970-01-01T00:00:00.000Z to " in r["message"]
               for r in refused)  # fmt: skip

    wait_for(lambda: count(admin, sid) == 120, timeout_s=60, what="the backfill stored")
    # the sink is not stuck on it: the next event is stored too
    post_batch(server, key, [{"event": "page_view", "anonymous_id": "h", "message_id": "now",
                              "properties": {"path": "/"}}])  # fmt: skip
    wait_for(lambda: count(admin, sid) == 121, timeout_s=30, what="the next event stored")
    per_minute = sql(
        admin,
        "SELECT sum(events) AS n, toYear(min(minute)) AS first, toYear(max(minute)) AS last "
        f"FROM tracking_minute WHERE system_id = '{sid}'",
    )[0]
    assert per_minute == {"n": 121, "first": 2005, "last": datetime.now(UTC).year}
    ready = httpx.get(f"{server.settings.api_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text


def test_a_single_call_out_of_range_is_a_422(admin: httpx.Client, server: ServeProcess) -> None:
    system = new_system(admin)
    response = httpx.post(
        f"{server.settings.api_url}/v1/track",
        json={"event": "page_view", "userId": "u", "timestamp": "1969-07-20T20:17:40Z",
              "properties": {"path": "/moon"}},
        headers={"X-API-Key": system["api_key"]},
    )  # fmt: skip
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["type"] == "/problems/timestamp-out-of-range"
    assert body["detail"].startswith("timestamp 1969-07-20T20:17:40.000Z is outside the accepted")


def test_an_old_record_in_tracking_raw_is_rejected_with_the_range(
    admin: httpx.Client, server: ServeProcess
) -> None:
    """Records the API took before it checked client times: validation applies the same
    rule and they are listed with the reason, not stored as 1970."""
    system = new_system(admin)
    now = datetime.now(UTC)
    old = TrackedEvent(
        message_id="from-an-older-release", event="page_view", user_id=None,
        anonymous_id="h", timestamp=datetime(1, 1, 1, tzinfo=UTC), received_at=now,
        properties={"path": "/"}, context={}, system_id=system["system_id"],
        partner_id=system["partner_id"],
    )  # fmt: skip
    producer = Producer({"bootstrap.servers": server.settings.kafka_bootstrap})
    producer.produce(topics.TRACKING_RAW, json.dumps(old.to_json_dict()).encode(),
                     key=system["system_id"].encode())  # fmt: skip
    assert producer.flush(10) == 0

    def rejected() -> list[dict[str, Any]] | None:
        body = admin.get(
            f"/api/admin/partners/{system['partner_id']}/systems/{system['system_id']}"
            "/rejected-events"
        ).json()
        return body["items"] or None

    (item,) = wait_for(rejected, timeout_s=30, what="the old record rejected")
    assert item["message_id"] == "from-an-older-release"
    assert item["reasons"][0].startswith("timestamp 0001-01-01T00:00:00.000Z is outside")
    assert count(admin, system["system_id"]) == 0
