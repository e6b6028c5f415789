"""Projections as a platform engineer uses them, through the API the CLI calls: the example
plugin (``examples/partner_activity``) is discovered, built from history and kept live;
rebuilt into a new version, promoted and the old version dropped, with the same answers
before and after; and the requests that cannot be done get a precise problem."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.test_tracking import key_works, new_system, post_batch
from tests.support import ServeProcess, sql, wait_for

pytestmark = pytest.mark.e2e

NAME = "partner_activity"
DAY = datetime(2024, 6, 1, 12, tzinfo=UTC)


def events(start: int, count: int) -> list[dict[str, Any]]:
    """Page views over two days by seven users, every fifth anonymous."""
    return [
        {
            "type": "track", "event": "page_view", "messageId": f"pa-{i}",
            "timestamp": (DAY + timedelta(days=i % 2, seconds=i)).isoformat(),
            "properties": {"path": f"/p/{i}"},
            **({"anonymousId": f"anon-{i % 3}"} if i % 5 == 0 else {"userId": f"u-{i % 7}"}),
        }
        for i in range(start, start + count)
    ]  # fmt: skip


def expected(posted: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """day -> (daily active users, events): the projection computed by hand."""
    users: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for e in posted:
        day = e["timestamp"][:10]
        users[day].add(e.get("userId") or e["anonymousId"])
        counts[day] += 1
    return {day: (len(users[day]), counts[day]) for day in counts}


def activity(admin: httpx.Client, system_id: str) -> dict[str, tuple[int, int]]:
    rows = sql(admin, "SELECT toString(day) AS day, daily_active_users, events "
                      f"FROM partner_daily_activity WHERE system_id = '{system_id}'")  # fmt: skip
    return {r["day"]: (int(r["daily_active_users"]), int(r["events"])) for r in rows}


def versions(admin: httpx.Client) -> dict[int, dict[str, Any]]:
    response = admin.get(f"/api/admin/projections/{NAME}")
    assert response.status_code == 200, response.text
    return {v["version"]: v for v in response.json()["versions"]}


def test_the_example_plugin_is_built_rebuilt_promoted_and_kept_live(
    admin: httpx.Client, server: ServeProcess
) -> None:
    system = new_system(admin)
    posted = events(0, 40)
    assert post_batch(server, system["api_key"], posted)["accepted"] == 40
    want = expected(posted)
    wait_for(lambda: activity(admin, system["system_id"]) == want, timeout_s=60,
             what="the plugin's view to count the events", every_s=0.3)  # fmt: skip

    listed = admin.get("/api/admin/projections").json()["projections"]
    names = {(p["name"], p["state"]) for p in listed}
    assert {("users", "live"), ("event_log", "live"), ("partner_keys", "live"),
            ("command_status", "live"), (NAME, "live")} <= names  # fmt: skip
    (live,) = [v for v in versions(admin).values() if v["state"] == "live"]

    rebuilt = admin.post(f"/api/admin/projections/{NAME}/rebuild", json={"from": "earliest"})
    assert rebuilt.status_code == 202, rebuilt.text
    number = rebuilt.json()["version"]
    assert number > live["version"]
    assert rebuilt.headers["location"] == f"/api/admin/projections/{NAME}"
    wait_for(lambda: number in versions(admin), timeout_s=30, what=f"version {number} listed")
    again = admin.post(f"/api/admin/projections/{NAME}/rebuild")
    assert (again.status_code, again.json()["version"]) == (200, number)  # resumes, not twice
    wait_for(
        lambda: (v := versions(admin).get(number)) and v["state"] == "building"
        and v["partitions"] and v["lag"] == 0,
        timeout_s=120, what=f"version {number} caught up", every_s=0.5,
    )  # fmt: skip

    promoted = admin.post(f"/api/admin/projections/{NAME}/promote", json={"max_lag": 0})
    assert promoted.status_code == 202, promoted.text
    wait_for(lambda: versions(admin)[number]["state"] == "live", timeout_s=60,
             what=f"version {number} live")  # fmt: skip
    assert versions(admin)[live["version"]]["state"] == "retired"
    assert activity(admin, system["system_id"]) == want  # the same answer from the new version

    more = events(40, 15)
    assert post_batch(server, system["api_key"], more)["accepted"] == 15
    want = expected(posted + more)
    wait_for(lambda: activity(admin, system["system_id"]) == want, timeout_s=60,
             what="the promoted version kept live", every_s=0.3)  # fmt: skip

    dropped = admin.delete(f"/api/admin/projections/{NAME}/versions/{live['version']}")
    assert dropped.status_code == 202, dropped.text
    wait_for(lambda: live["version"] not in versions(admin), timeout_s=60,
             what="the retired version dropped")  # fmt: skip


def test_a_redis_read_model_is_rebuilt_and_promoted_while_keys_keep_working(
    admin: httpx.Client, server: ServeProcess
) -> None:
    """partner_keys: the API-key lookup of every SDK request. Version N+1 is built under
    prefixed keys, the swap is one MULTI/EXEC, and a key works before, after and from the
    new version on; the retired keys go with drop."""
    import redis

    system = new_system(admin)
    client = redis.Redis.from_url(server.settings.redis_url)
    by_version = {v["version"]: v for v in admin.get("/api/admin/projections/partner_keys")
                  .json()["versions"]}  # fmt: skip
    (live,) = [n for n, v in by_version.items() if v["state"] == "live"]
    started = admin.post("/api/admin/projections/partner_keys/rebuild")
    assert started.status_code == 202, started.text
    number = started.json()["version"]

    def version(n: int) -> dict[str, Any] | None:
        found = admin.get("/api/admin/projections/partner_keys").json()["versions"]
        return next((v for v in found if v["version"] == n), None)

    wait_for(lambda: (v := version(number)) and v["state"] == "building" and v["lag"] == 0,
             timeout_s=60, what="the Redis rebuild caught up", every_s=0.3)  # fmt: skip
    prefixed = f"v{number}:streamfold:partner:{system['partner_id']}"
    assert client.exists(prefixed), "the rebuild writes its own keys"
    assert post_batch(server, system["api_key"], events(100, 1))["accepted"] == 1

    promoted = admin.post("/api/admin/projections/partner_keys/promote", json={"max_lag": 0})
    assert promoted.status_code == 202, promoted.text
    wait_for(lambda: (v := version(number)) and v["state"] == "live", timeout_s=60,
             what="the Redis version live")  # fmt: skip
    assert not client.exists(prefixed)
    assert client.exists(f"v{live}:streamfold:partner:{system['partner_id']}")
    assert post_batch(server, system["api_key"], events(101, 1))["accepted"] == 1
    partner = admin.get(f"/api/admin/partners/{system['partner_id']}")
    assert partner.status_code == 200, partner.text
    # a key made after the swap exists only through the promoted version, now live
    fresh = new_system(admin)
    assert key_works(server, fresh["api_key"])
    assert client.exists(f"streamfold:partner:{fresh['partner_id']}")

    dropped = admin.delete(f"/api/admin/projections/partner_keys/versions/{live}")
    assert dropped.status_code == 202, dropped.text
    wait_for(lambda: version(live) is None, timeout_s=60, what="the old keys dropped")
    assert not list(client.scan_iter(match=f"v{live}:streamfold:*", count=1000))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "slug"),
    [
        ("post", "/api/admin/projections/nope/rebuild", None, 404, "unknown-projection"),
        ("post", "/api/admin/projections/users/promote", None, 409, "nothing-to-promote"),
        ("post", "/api/admin/projections/users/rebuild", {"from": "yesterday"}, 422, "bad-start"),
        ("post", "/api/admin/projections/users/rebuild", {"from": "2024-01-01T00:00:00"}, 422,
         "bad-start"),
        ("post", "/api/admin/projections/users/rebuild", {"from": '{"users.events": {"0": -1}}'},
         422, "bad-start"),
        ("delete", "/api/admin/projections/users/versions/1", None, 409, "live-version"),
        ("delete", "/api/admin/projections/users/versions/99", None, 404, "unknown-version"),
    ],
)  # fmt: skip
def test_requests_that_cannot_be_done_get_a_precise_problem(
    admin: httpx.Client, method: str, path: str, body: Any, status: int, slug: str
) -> None:
    response = admin.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"/problems/{slug}"


def test_projections_need_an_admin(server: ServeProcess) -> None:
    response = httpx.get(f"{server.settings.api_url}/api/admin/projections")
    assert response.status_code == 401
