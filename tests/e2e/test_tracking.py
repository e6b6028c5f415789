"""Partner tracking end to end: keys, ingestion, validation, ClickHouse, analytics."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipeline.common import topics
from tests.support import ServeProcess, read_topic, wait_for

pytestmark = pytest.mark.e2e

PAGE_VIEW = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "status": {"type": "integer"}},
    "required": ["path"],
}
DAY = datetime(2024, 3, 5, tzinfo=UTC)


def new_system(admin: httpx.Client, **system: Any) -> dict[str, str]:
    partner = admin.post(
        "/api/admin/partners",
        json={"name": f"p-{uuid.uuid4().hex[:6]}", "email": "ops@example.org", "max_systems": 2},
    )
    assert partner.status_code == 201, partner.text
    pid = partner.json()["id"]
    created = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "web", **system})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["api_key"].startswith("sk_live_") and body["key_prefix"] == body["api_key"][:12]
    sid = body["system_id"]
    structure = admin.put(
        f"/api/admin/partners/{pid}/systems/{sid}/event-structures/page_view",
        json={"json_schema": PAGE_VIEW, "required": True},
    )
    assert structure.status_code == 200, structure.text
    # partner routes answer once the read model has applied the command
    state = admin.get(f"/api/admin/partners/{pid}").json()
    assert any("page_view" in s["structures"] for s in state["systems"])
    return {"partner_id": pid, "system_id": sid, "api_key": body["api_key"]}


def key_works(server: ServeProcess, api_key: str) -> bool:
    response = httpx.post(
        f"{server.settings.api_url}/v1/batch",
        json={"batch": []},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    return response.status_code == 200


def post_batch(server: ServeProcess, api_key: str, events: list[dict]) -> dict[str, Any]:
    response = httpx.post(
        f"{server.settings.api_url}/v1/batch",
        json={"batch": events},
        headers={"X-API-Key": api_key},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def stats(admin: httpx.Client, system_id: str) -> dict[str, Any]:
    return admin.get("/v1/analytics/stats", params={"system": system_id}).json()


def stored(admin: httpx.Client, system_id: str, n: int) -> dict[str, Any]:
    return wait_for(
        lambda: (s := stats(admin, system_id))["totals"]["events"] >= n and s,
        timeout_s=30,
        what=f"{n} events in ClickHouse",
        every_s=0.2,
    )


@pytest.fixture
def system(admin: httpx.Client, server: ServeProcess) -> dict[str, str]:
    created = new_system(admin)
    assert key_works(server, created["api_key"])
    return created


def test_a_key_works_on_the_first_request_after_the_answer_that_shows_it(
    admin: httpx.Client, server: ServeProcess
) -> None:
    """An SDK set up by a script uses its key at once: no 401 while a read model lags."""
    for _ in range(5):
        partner = admin.post(
            "/api/admin/partners", json={"name": f"p-{uuid.uuid4().hex[:6]}", "email": "o@x.org"}
        )
        assert partner.status_code == 201, partner.text
        pid = partner.json()["id"]
        created = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "web"})
        assert created.status_code == 201, created.text
        first = httpx.post(
            f"{server.settings.api_url}/v1/track",
            json={"event": "signed_up", "user_id": "u-1"},
            headers={"Authorization": f"Bearer {created.json()['api_key']}"},
        )
        assert first.status_code == 200, first.text
        sid = created.json()["system_id"]
        rotated = admin.post(f"/api/admin/partners/{pid}/systems/{sid}/rotate-key")
        assert rotated.status_code == 200, rotated.text
        assert key_works(server, rotated.json()["api_key"])


def test_batch_is_counted_exactly_and_invalid_events_go_to_the_dlq(
    admin: httpx.Client, server: ServeProcess, system: dict[str, str]
) -> None:
    valid = [
        {"event": "page_view", "anonymous_id": f"a{i % 7}", "message_id": f"ok-{i}",
         "timestamp": (DAY + timedelta(seconds=i)).isoformat(),
         "properties": {"path": f"/p/{i % 3}", "status": 200}}
        for i in range(300)
    ]  # fmt: skip
    invalid = [
        {"event": "page_view", "anonymous_id": "bad", "message_id": f"bad-{i}",
         "properties": {"status": "teapot"}}
        for i in range(5)
    ]  # fmt: skip
    unshaped = [{"event": "page_view", "message_id": "no-id"}, "not an object"]
    answer = post_batch(server, system["api_key"], valid + invalid + unshaped)
    assert answer["accepted"] == 305 and answer["rejected"] == 2
    assert [r["reason"] for r in answer["results"][-2:]] == ["missing_id", "malformed"]

    totals = stored(admin, system["system_id"], 300)["totals"]
    assert totals == {**totals, "events": 300, "unique_users": 7}

    def rejected() -> dict[str, Any] | None:
        body = admin.get(
            f"/api/admin/partners/{system['partner_id']}/systems/{system['system_id']}"
            "/rejected-events"
        ).json()
        return body if body["total"] == 7 else None

    # validation's five refusals, and the two the API refused itself (listed too: an SDK
    # that got 200 does not read the per-event answer)
    body = wait_for(rejected, timeout_s=30, what="7 rejected events")
    by_id = {i["message_id"]: i["reasons"] for i in body["items"]}
    assert set(by_id) == {f"bad-{i}" for i in range(5)} | {"no-id", ""}
    assert all("path" in " ".join(by_id[f"bad-{i}"]) for i in range(5))
    assert by_id["no-id"][0].startswith("missing_id: ")
    assert by_id[""][0].startswith("malformed: ")
    time.sleep(1)  # nothing more arrives later: the counts were final
    assert stats(admin, system["system_id"])["totals"]["events"] == 300
    # recorded at the edge: only what the API refused took the tracking.raw hop
    key = system["system_id"].encode()
    raw = [
        json.loads(m.value())
        for m in read_topic(server.settings.kafka_bootstrap, topics.TRACKING_RAW)
        if m.key() == key
    ]
    assert sorted(e["message_id"] for e in raw) == [f"bad-{i}" for i in range(5)]
    recorded = [m for m in read_topic(server.settings.kafka_bootstrap, topics.TRACKING_EVENTS)
                if m.key() == key]  # fmt: skip
    assert len(recorded) == 300


def test_duplicate_message_id_is_recorded_once(
    admin: httpx.Client, server: ServeProcess, system: dict[str, str]
) -> None:
    event = {"event": "signup", "user_id": "u-1", "message_id": "same-message"}
    for _ in range(3):
        post_batch(server, system["api_key"], [event, event])
    marker = {"event": "marker", "user_id": "u-1", "message_id": "last"}
    post_batch(server, system["api_key"], [marker])
    totals = stored(admin, system["system_id"], 2)["totals"]
    time.sleep(1)
    assert stats(admin, system["system_id"])["totals"]["events"] == totals["events"] == 2


def test_rotated_and_revoked_keys_stop_working_within_seconds(
    admin: httpx.Client, server: ServeProcess, system: dict[str, str]
) -> None:
    pid, sid, old = system["partner_id"], system["system_id"], system["api_key"]
    base = f"/api/admin/partners/{pid}/systems/{sid}"
    started = time.monotonic()
    rotated = admin.post(f"{base}/rotate-key")
    assert rotated.status_code == 200
    new = rotated.json()["api_key"]
    assert key_works(server, new)

    # Each API process caches a key for key_cache_ttl_s (2 s), so one process refusing
    # the old key says nothing of the others: wait until the request itself is refused.
    def refused() -> httpx.Response | None:
        answer = httpx.post(
            f"{server.settings.api_url}/v1/track", json={}, headers={"X-API-Key": old}
        )
        return answer if answer.status_code == 401 else None

    answer = wait_for(refused, timeout_s=10, what="the old key refused with a 401")
    assert time.monotonic() - started < 10
    assert answer.headers["content-type"] == "application/problem+json"

    assert admin.post(f"{base}/deactivate").status_code == 200
    wait_for(lambda: not key_works(server, new), timeout_s=10, what="deactivated key refused")
    assert admin.post(f"{base}/reactivate").status_code == 200
    wait_for(lambda: key_works(server, new), timeout_s=10, what="reactivated key accepted")


def test_bad_requests_get_precise_problems(server: ServeProcess, system: dict[str, str]) -> None:
    url, key = server.settings.api_url, {"X-API-Key": system["api_key"]}
    huge = httpx.post(f"{url}/v1/batch", content=b"[" + b" " * 1_100_000 + b"]", headers=key)
    assert huge.status_code == 413
    many = httpx.post(
        f"{url}/v1/batch", json={"batch": [{"event": "e", "user_id": "u"}] * 1001}, headers=key
    )
    assert many.status_code == 413 and many.json()["type"] == "/problems/too-many-events"
    broken = httpx.post(
        f"{url}/v1/track",
        content=b'{"event": ',
        headers={**key, "content-type": "application/json"},
    )
    assert broken.status_code == 400 and broken.json()["type"] == "/problems/malformed-json"
    big_event = {"event": "e", "user_id": "u", "properties": {"blob": "x" * 40_000}}
    assert httpx.post(f"{url}/v1/track", json=big_event, headers=key).status_code == 413
    assert httpx.post(f"{url}/v1/track", json={"event": "e"}, headers=key).status_code == 400
    nokey = httpx.post(f"{url}/v1/track", json={"event": "e", "user_id": "u"})
    assert nokey.status_code == 401


def test_key_is_shown_once_and_the_system_limit_holds(admin: httpx.Client) -> None:
    pid = admin.post(
        "/api/admin/partners", json={"name": "limits", "email": "l@example.org", "max_systems": 1}
    ).json()["id"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "a"}, headers=key)
    assert first.status_code == 201
    again = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "a"}, headers=key)
    assert again.status_code == 409 and again.json()["type"] == "/problems/key-already-issued"
    over = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "b"})
    assert over.status_code == 409 and over.json()["reason"] == "invalid_state"
    partner = wait_for(
        lambda: (p := admin.get(f"/api/admin/partners/{pid}").json()).get("systems") and p,
        timeout_s=20,
        what="the system in the partner read model",
    )
    assert [s["key_prefix"] for s in partner["systems"]] == [first.json()["key_prefix"]]
    assert "key_hash" not in partner["systems"][0] and "api_key" not in str(partner)


def _funnel_levels(
    events: list[tuple[str, datetime, str]], steps: list[str], window: timedelta
) -> dict[str, int]:
    by_user: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for user, at, name in events:
        by_user[user].append((at, name))
    levels = {}
    for user, seq in by_user.items():
        seq.sort()
        best = 0
        for i, (t0, name) in enumerate(seq):
            if name != steps[0]:
                continue
            level, last = 1, t0
            for at, n in seq[i + 1 :]:
                if level == len(steps) or at > t0 + window:
                    break
                if n == steps[level] and at > last:
                    level, last = level + 1, at
            best = max(best, level)
        levels[user] = best
    return levels


def test_funnel_and_timeseries_match_a_brute_force_computation(
    admin: httpx.Client, server: ServeProcess, system: dict[str, str]
) -> None:
    rng = random.Random(7)
    names = ["visit", "signup", "purchase"]
    events: list[tuple[str, datetime, str]] = []
    for u in range(60):
        at = DAY + timedelta(minutes=rng.randrange(0, 180))
        for _ in range(rng.randrange(1, 6)):
            at += timedelta(seconds=rng.randrange(1, 1500))
            events.append((f"user-{u}", at, rng.choice(names)))
    sdk = [
        {"event": name, "user_id": user, "timestamp": at.isoformat(), "message_id": f"f-{i}"}
        for i, (user, at, name) in enumerate(events)
    ]
    post_batch(server, system["api_key"], sdk)
    stored(admin, system["system_id"], len(events))

    window = timedelta(minutes=30)
    funnel = admin.get(
        "/v1/analytics/funnel",
        params={"system": system["system_id"], "steps": names, "window_s": 1800},
    )
    assert funnel.status_code == 200, funnel.text
    levels = _funnel_levels(events, names, window)
    expected = [sum(1 for v in levels.values() if v >= k) for k in range(1, 4)]
    assert [s["users"] for s in funnel.json()["steps"]] == expected

    series = admin.get(
        "/v1/analytics/timeseries",
        params={"system": system["system_id"], "bucket": "hour",
                "start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()},
    )  # fmt: skip
    assert series.status_code == 200, series.text
    counts: dict[datetime, int] = defaultdict(int)
    users: dict[datetime, set[str]] = defaultdict(set)
    for user, at, _ in events:
        hour = at.replace(minute=0, second=0, microsecond=0)
        counts[hour] += 1
        users[hour].add(user)
    got = {
        datetime.fromisoformat(b["bucket"]): (b["events"], b["unique_users"]) for b in series.json()
    }
    assert got == {h: (counts[h], len(users[h])) for h in counts}


def test_partner_read_token_sees_only_its_own_systems(
    admin: httpx.Client, server: ServeProcess, system: dict[str, str]
) -> None:
    other = new_system(admin)
    issued = admin.post(
        f"/api/admin/partners/{system['partner_id']}/read-tokens", json={"name": "scope"}
    )
    assert issued.status_code == 201, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['token']}"}
    url = f"{server.settings.api_url}/v1/analytics/stats"
    mine = httpx.get(url, params={"system": system["system_id"]}, headers=headers)
    assert mine.status_code == 200, mine.text
    theirs = httpx.get(url, params={"system": other["system_id"]}, headers=headers)
    assert theirs.status_code == 403
