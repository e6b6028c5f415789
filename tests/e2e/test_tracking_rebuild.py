"""``tracking_events`` and ``tracking_rejections`` rebuilt like any read model (issue 21):
a new version is built from ``tracking.events`` (``tracking.dlq``) into its own table, with
its own deduplication, while ingestion goes on; promoted, it answers for every event
exactly once, the events sent during the rebuild included, and keeps up after."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.e2e.test_tracking import new_system, post_batch
from tests.support import ServeProcess, sql, wait_for

pytestmark = pytest.mark.e2e


def events(tag: str, start: int, count: int) -> list[dict[str, Any]]:
    return [{"event": "signup", "user_id": f"u-{i % 9}", "message_id": f"{tag}-{i}",
             "properties": {"n": i}} for i in range(start, start + count)]  # fmt: skip


def versions(admin: httpx.Client, name: str) -> dict[int, dict[str, Any]]:
    response = admin.get(f"/api/admin/projections/{name}")
    assert response.status_code == 200, response.text
    return {v["version"]: v for v in response.json()["versions"]}


def counts(admin: httpx.Client, system_id: str) -> tuple[int, int]:
    (row,) = sql(admin, "SELECT count() AS n, uniqExact(event_id) AS u FROM tracking_events "
                        f"WHERE system_id = '{system_id}'")  # fmt: skip
    return int(row["n"]), int(row["u"])


def rebuild_and_promote(admin: httpx.Client, name: str, max_lag: int = 0) -> tuple[int, int]:
    """(old live version, new live version) after a rebuild from the earliest record,
    promoted once at most ``max_lag`` records behind (what it has not read yet it reads
    live after the promotion: nothing is skipped)."""
    (live,) = [n for n, v in versions(admin, name).items() if v["state"] == "live"]
    started = admin.post(f"/api/admin/projections/{name}/rebuild", json={"from": "earliest"})
    assert started.status_code == 202, started.text
    number = started.json()["version"]
    wait_for(
        lambda: (v := versions(admin, name).get(number)) and v["state"] == "building"
        and v["partitions"] and v["lag"] <= max_lag,
        timeout_s=180, what=f"{name} v{number} caught up", every_s=0.5,
    )  # fmt: skip
    promoted = admin.post(f"/api/admin/projections/{name}/promote", json={"max_lag": max_lag})
    assert promoted.status_code == 202, promoted.text
    wait_for(lambda: versions(admin, name)[number]["state"] == "live", timeout_s=60,
             what=f"{name} v{number} live")  # fmt: skip
    return live, number


def test_tracking_events_rebuilt_while_ingesting(admin: httpx.Client, server: ServeProcess) -> None:
    system = new_system(admin)
    key, sid = system["api_key"], system["system_id"]
    assert post_batch(server, key, events("before", 0, 300))["accepted"] == 300
    wait_for(lambda: counts(admin, sid) == (300, 300), timeout_s=60, what="300 stored")

    sent = [300]
    stop = threading.Event()

    def ingest() -> None:  # ingestion goes on through the rebuild and the promotion
        batch = 0
        while not stop.is_set():
            assert post_batch(server, key, events("during", batch * 50, 50))["accepted"] == 50
            sent[0] += 50
            batch += 1

    feeder = threading.Thread(target=ingest, daemon=True)
    feeder.start()
    try:
        old, new = rebuild_and_promote(admin, "tracking_events", max_lag=10_000)
    finally:
        stop.set()
        feeder.join(timeout=60)
    assert new > old and versions(admin, "tracking_events")[old]["state"] == "retired"
    assert post_batch(server, key, events("after", 0, 25))["accepted"] == 25
    total = sent[0] + 25
    wait_for(lambda: counts(admin, sid) == (total, total), timeout_s=90,
             what=f"all {total} events once in the promoted version")  # fmt: skip
    stats = admin.get("/v1/analytics/stats", params={"system": sid}).json()
    assert stats["totals"]["events"] == total


def test_tracking_rejections_rebuilt(admin: httpx.Client, server: ServeProcess) -> None:
    system = new_system(admin)
    refused = [{"event": "no id"}, {"event": "x", "user_id": "u", "timestamp": "year 3000"}]
    assert post_batch(server, system["api_key"], refused)["rejected"] == 2
    path = f"/api/admin/partners/{system['partner_id']}/systems/{system['system_id']}"
    wait_for(lambda: admin.get(f"{path}/rejected-events").json()["total"] == 2, timeout_s=60,
             what="two rejections listed")  # fmt: skip
    rebuild_and_promote(admin, "tracking_rejections")
    assert admin.get(f"{path}/rejected-events").json()["total"] == 2
