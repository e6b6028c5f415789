"""Exactly-once into ClickHouse across a SIGKILL of the worker mid-stream."""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid

import httpx
import pytest

from connectors.ratelimit import TokenBuckets
from connectors.redis import open_redis
from tests.e2e.test_tracking import key_works, new_system, post_batch
from tests.support import ServeProcess, sql, wait_for

pytestmark = pytest.mark.integration


def test_sigkill_mid_stream_keeps_clickhouse_exact(
    admin: httpx.Client, server: ServeProcess
) -> None:
    system = new_system(admin)
    wait_for(lambda: key_works(server, system["api_key"]), timeout_s=20, what="key usable")
    sid = system["system_id"]
    batches = [
        [
            {"event": "page_view", "anonymous_id": f"h{(b * 1000 + i) % 97}",
             "message_id": f"m-{b}-{i}", "properties": {"path": f"/{i % 11}", "status": 200}}
            for i in range(1000)
        ]
        for b in range(30)
    ]  # fmt: skip
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda batch: post_batch(server, system["api_key"], batch), batches)
        )
    accepted = sum(a["accepted"] for a in answers)
    assert accepted == 30_000

    count_sql = (
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM tracking_events "
        f"WHERE system_id = '{sid}'"
    )
    wait_for(
        lambda: 0 < sql(admin, count_sql)[0]["n"] < accepted,
        timeout_s=60,
        what="the sink under way",
        every_s=0.05,
    )
    server.kill()
    server.start()
    wait_for(
        lambda: sql(admin, count_sql)[0]["n"] >= accepted,
        timeout_s=180,
        what="all events in ClickHouse after restart",
        every_s=0.5,
    )
    wait_for(server.drained, timeout_s=60, what="worker caught up")
    final = sql(admin, count_sql)[0]
    assert final["n"] == final["ids"] == accepted
    per_minute = sql(
        admin, f"SELECT sum(events) AS n FROM tracking_minute WHERE system_id = '{sid}'"
    )[0]["n"]
    assert per_minute == accepted  # the per-minute rollup counts each row once too


async def test_token_bucket_refuses_past_the_burst_and_refills(server: ServeProcess) -> None:
    redis = open_redis(server.settings.redis_url)
    try:
        buckets = TokenBuckets(redis, rate_per_s=100, burst=1000)
        name = f"test-{uuid.uuid4()}"
        assert (await buckets.take(name, 1000)).allowed
        refused = await buckets.take(name, 500)
        assert not refused.allowed and 3 <= refused.retry_after_s <= 5.5
        await asyncio.sleep(1.2)  # refills 100 tokens/s
        assert (await buckets.take(name, 100)).allowed
    finally:
        await redis.aclose()
