"""Admin user management through the HTTP API, against a real serve process."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.routes.health import READY_CACHE_S
from tests.support import PROBLEM, ServeProcess, new_user, sql, wait_for

pytestmark = pytest.mark.e2e


def person(**over: Any) -> dict[str, Any]:
    return new_user("u", **{"phone": "504-621-8927", **over})


def create(admin: httpx.Client, **over: Any) -> dict[str, Any]:
    response = admin.post("/api/admin/users", json=person(**over))
    assert response.status_code == 201, response.text
    return response.json()


def visible(admin: httpx.Client, user_id: str, version: int) -> dict[str, Any]:
    """The user as the read model shows it once it reached ``version``."""

    def probe() -> dict[str, Any] | None:
        response = admin.get(f"/api/admin/users/{user_id}")
        if response.status_code == 200 and response.json()["version"] >= version:
            return response.json()
        return None

    return wait_for(probe, timeout_s=20, what=f"user {user_id} at version {version}")


def test_create_then_read_back(admin: httpx.Client) -> None:
    body = person(email="  Grace.Hopper@Example.COM ", username="Grace_H_" + uuid.uuid4().hex[:6])
    created = admin.post("/api/admin/users", json=body)
    assert created.status_code == 201, created.text
    outcome = created.json()
    assert outcome["version"] == 1 and len(outcome["event_ids"]) == 1

    user = visible(admin, outcome["id"], 1)
    assert user["email"] == "grace.hopper@example.com"
    assert user["username"] == body["username"].lower()
    assert user["phone"] == "+15046218927"
    assert user["status"] == "active" and user["role"] == "student"
    assert datetime.fromisoformat(user["created_at"]).utcoffset() == timedelta(0)
    assert "password" not in user and "password_hash" not in user

    listed = admin.get("/api/admin/users", params={"search": "grace.hopper", "page_size": 5}).json()
    assert [u["user_id"] for u in listed["items"]] == [outcome["id"]]
    assert listed["total"] == 1


def test_concurrent_creates_with_one_email_exactly_one_wins(admin: httpx.Client) -> None:
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    bodies = [person(email=email) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda b: admin.post("/api/admin/users", json=b), bodies))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"] == PROBLEM
            assert r.json()["reason"] == "duplicate_email"


def test_username_is_unique_case_insensitively(admin: httpx.Client) -> None:
    first = create(admin)
    again = admin.post("/api/admin/users", json=person(username=first_username(admin, first)))
    assert again.status_code == 409
    assert again.json()["reason"] == "duplicate_username"


def first_username(admin: httpx.Client, outcome: dict[str, Any]) -> str:
    return visible(admin, outcome["id"], 1)["username"].upper()


def test_failed_create_releases_its_email(admin: httpx.Client) -> None:
    taken = create(admin)
    name = visible(admin, taken["id"], 1)["username"]
    email = f"free-{uuid.uuid4().hex[:8]}@example.com"
    clash = admin.post("/api/admin/users", json=person(email=email, username=name))
    assert clash.status_code == 409 and clash.json()["reason"] == "duplicate_username"
    # the email reserved by the failed attempt was released: it can be used now
    assert admin.post("/api/admin/users", json=person(email=email)).status_code == 201


def test_expected_version_conflict(admin: httpx.Client) -> None:
    uid = create(admin)["id"]
    update = {"first_name": "Ada", "last_name": "Byron", "role": "teacher"}
    stale = admin.put(f"/api/admin/users/{uid}", json={**update, "expected_version": 7})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "conflict"
    fresh = admin.put(f"/api/admin/users/{uid}", json={**update, "expected_version": 1})
    assert fresh.status_code == 200 and fresh.json()["version"] == 2
    assert visible(admin, uid, 2)["last_name"] == "Byron"


def test_resubmitted_command_returns_same_result_and_emits_nothing(
    admin: httpx.Client, server: ServeProcess
) -> None:
    key = str(uuid.uuid4())
    body = person()
    first = admin.post("/api/admin/users", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201
    # a retry of the same request (its password hashed anew: the command differs)
    second = admin.post("/api/admin/users", json=body, headers={"Idempotency-Key": key})
    assert second.status_code == 201
    assert second.json() == first.json()
    # the same key with another request: Stripe's 422 (issue 25), nothing sent
    other = admin.post(
        "/api/admin/users",
        json={**body, "password": "another password"},
        headers={"Idempotency-Key": key},
    )
    assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-reused"
    uid = first.json()["id"]
    visible(admin, uid, 1)
    wait_for(server.drained, timeout_s=30, what="worker caught up")
    history = admin.get(f"/api/admin/users/{uid}/history").json()
    assert [e["event_type"] for e in history] == ["UserCreated"]


def test_an_idempotency_key_outlasts_the_aggregate_s_memory(admin: httpx.Client) -> None:
    """Seed 004: a key is remembered for 24 h with its first result, so a resend after
    more than the 100 commands an aggregate remembers answers as the first time instead of
    running again."""
    uid = create(admin)["id"]
    key, change = str(uuid.uuid4()), {"first_name": "Keyed", "last_name": "Once"}
    first = admin.put(f"/api/admin/users/{uid}", json=change, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    for n in range(105):  # push the keyed command out of the aggregate's memory
        answer = admin.put(f"/api/admin/users/{uid}", json={**change, "first_name": f"N{n}"})
        assert answer.status_code == 200, answer.text
    again = admin.put(f"/api/admin/users/{uid}", json=change, headers={"Idempotency-Key": key})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the first answer: same version, same events
    assert visible(admin, uid, 107)["first_name"] == "N104"  # and it did not run again


def test_delete_then_update_is_rejected(admin: httpx.Client) -> None:
    uid = create(admin)["id"]
    assert admin.delete(f"/api/admin/users/{uid}").status_code == 200
    update = admin.put(
        f"/api/admin/users/{uid}", json={"first_name": "X", "last_name": "Y", "role": "student"}
    )
    assert update.status_code == 409 and update.json()["reason"] == "deleted"
    user = visible(admin, uid, 2)
    assert user["status"] == "deleted"
    default_list = admin.get("/api/admin/users", params={"search": user["email"]}).json()
    assert default_list["total"] == 0
    deleted_list = admin.get(
        "/api/admin/users", params={"search": user["email"], "status": "deleted"}
    ).json()
    assert deleted_list["total"] == 1


def test_lifecycle_history_oldest_first_without_password_hashes(
    server: ServeProcess, admin: httpx.Client
) -> None:
    uid = create(admin)["id"]
    assert (
        admin.post(f"/api/admin/users/{uid}/deactivate", json={"reason": "left"}).status_code == 200
    )
    again = admin.post(f"/api/admin/users/{uid}/deactivate")
    assert again.status_code == 409 and again.json()["reason"] == "invalid_state"
    assert admin.post(f"/api/admin/users/{uid}/reactivate").status_code == 200
    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    account = admin.put(
        f"/api/admin/users/{uid}/account", json={"email": new_email, "password": "new password 1"}
    )
    assert account.status_code == 200, account.text
    user = visible(admin, uid, 4)
    assert user["email"] == new_email

    def full_history() -> list[dict[str, Any]] | None:
        events = admin.get(f"/api/admin/users/{uid}/history").json()
        return events if len(events) == 4 else None

    events = wait_for(full_history, timeout_s=20, what="4 events in event_log")
    assert [e["event_type"] for e in events] == [
        "UserCreated", "UserDeactivated", "UserReactivated", "AccountUpdated",
    ]  # fmt: skip
    assert [e["aggregate_version"] for e in events] == [1, 2, 3, 4]
    assert all(e["data"].get("password_hash") in (None, "[redacted]") for e in events)
    # every change names its author: the admin whose token made the request
    admins = admin.get("/api/admin/users", params={"search": server.settings.admin_email})
    [admin_row] = admins.json()["items"]
    assert {e["actor"] for e in events} == {admin_row["user_id"]}


def test_a_user_as_it_was_at_an_instant(admin: httpx.Client) -> None:
    """Seed 000: "what was the e-mail on Jan 1?": ``as_of`` folds the user's events up to
    that instant with the aggregate's evolve; before the user existed, 404."""
    created = create(admin)
    uid, first_email = created["id"], visible(admin, created["id"], 1)["email"]
    moves = []
    for n in range(3):  # three e-mail changes, each instant noted between two of them
        moves.append(datetime.now(UTC))
        email = f"moved{n}-{uuid.uuid4().hex[:8]}@example.com"
        answer = admin.put(f"/api/admin/users/{uid}/account", json={"email": email})
        assert answer.status_code == 200, answer.text
    now = visible(admin, uid, 4)
    wait_for(
        lambda: len(admin.get(f"/api/admin/users/{uid}/history").json()) == 4,
        timeout_s=20, what="4 events in event_log",
    )  # fmt: skip
    history = admin.get(f"/api/admin/users/{uid}/history").json()
    emails = [first_email] + [e["data"]["email"] for e in history[1:]]
    for n, instant in enumerate(moves):
        then = admin.get(f"/api/admin/users/{uid}", params={"as_of": instant.isoformat()})
        assert then.status_code == 200, then.text
        assert (then.json()["email"], then.json()["version"]) == (emails[n], n + 1)
    latest = admin.get(f"/api/admin/users/{uid}", params={"as_of": datetime.now(UTC).isoformat()})
    assert latest.json() == now  # the fold and the read model agree
    before = datetime.fromisoformat(now["created_at"]) - timedelta(seconds=1)
    missing = admin.get(f"/api/admin/users/{uid}", params={"as_of": before.isoformat()})
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    bad = admin.get(f"/api/admin/users/{uid}", params={"as_of": "last tuesday"})
    assert bad.status_code == 422


def test_a_correlation_id_follows_a_request_to_its_events_and_log_lines(
    admin: httpx.Client, server: ServeProcess
) -> None:
    """Seed 002: ``X-Correlation-ID`` taken from the request (or made), answered, carried
    in the envelope; seed 000: one log line per command decided and per event projected,
    with the ids and never the payload."""
    correlation_id = f"corr-{uuid.uuid4().hex}"
    body = person()
    created = admin.post(
        "/api/admin/users", json=body, headers={"X-Correlation-ID": correlation_id}
    )
    assert created.status_code == 201, created.text
    assert created.headers["X-Correlation-ID"] == correlation_id
    uid, command_id = created.json()["id"], created.json()["command_id"]

    def history() -> list[dict[str, Any]] | None:
        answer = admin.get(f"/api/admin/users/{uid}/history")
        return answer.json() if answer.status_code == 200 else None

    events = wait_for(history, timeout_s=20, what="the UserCreated event in event_log")
    assert [e["correlation_id"] for e in events] == [correlation_id], events

    def logged() -> list[str] | None:
        lines = [line for line in server.log_path.read_text(errors="replace").splitlines()
                 if f"correlation_id='{correlation_id}'" in line]  # fmt: skip
        decided = [line for line in lines if "event='command decided'" in line]
        projected = [line for line in lines if "event='event projected'" in line]
        return lines if decided and len(projected) >= 2 else None  # users and event_log

    lines = wait_for(logged, timeout_s=20, what="the command's and its event's log lines")
    assert any(f"command_id='{command_id}'" in line for line in lines), lines
    assert not any(body["email"].split("@")[0] in line for line in lines), lines

    made = admin.get("/healthz")
    assert uuid.UUID(made.headers["X-Correlation-ID"])  # none given: one is made
    odd = admin.get("/healthz", headers={"X-Correlation-ID": "has spaces in it"})
    assert uuid.UUID(odd.headers["X-Correlation-ID"])  # not an id: replaced


def test_login_with_new_password_records_last_login(
    server: ServeProcess, admin: httpx.Client
) -> None:
    body = person(role="teacher")
    uid = create(admin, **{k: body[k] for k in ("email", "username", "password", "role")})["id"]
    visible(admin, uid, 1)
    url = f"{server.settings.api_url}/api/auth/token"
    bad = httpx.post(url, data={"username": body["email"], "password": "wrong password"})
    assert bad.status_code == 401 and bad.headers["content-type"] == PROBLEM
    good = httpx.post(url, data={"username": body["username"], "password": body["password"]})
    assert good.status_code == 200
    teacher = {"Authorization": f"Bearer {good.json()['access_token']}"}
    # a teacher is not an admin
    assert (
        httpx.get(f"{server.settings.api_url}/api/admin/users", headers=teacher).status_code == 403
    )
    assert visible(admin, uid, 2)["last_login_at"] is not None


def test_errors_are_problem_details(admin: httpx.Client, server: ServeProcess) -> None:
    base = server.settings.api_url
    assert httpx.get(f"{base}/api/admin/users").status_code == 401
    forged = httpx.get(f"{base}/api/admin/users", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401 and forged.headers["content-type"] == PROBLEM

    malformed = admin.post(
        "/api/admin/users", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["type"] == "/problems/malformed-json"

    invalid = admin.post("/api/admin/users", json=person(email="nope", phone="12", role="king"))
    assert invalid.status_code == 422
    assert {e["loc"][-1] for e in invalid.json()["errors"]} >= {"email", "phone", "role"}

    huge = admin.post(
        "/api/admin/users", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413

    missing = admin.put(
        f"/api/admin/users/{uuid.uuid4()}", json={"first_name": "A", "last_name": "B"}
    )
    assert missing.status_code == 404 and missing.json()["reason"] == "not_found"
    assert admin.get(f"/api/admin/users/{uuid.uuid4()}").status_code == 404


def test_command_status_is_readable_after_the_fact(admin: httpx.Client) -> None:
    outcome = create(admin)
    status = wait_for(
        lambda: (r := admin.get(f"/api/commands/{outcome['command_id']}")).status_code == 200 and r,
        timeout_s=20,
        what="command status in Redis",
    ).json()
    assert status["status"] == "accepted" and status["id"] == outcome["id"]
    assert admin.get(f"/api/commands/{uuid.uuid4()}").status_code == 404


def test_sql_is_read_only(admin: httpx.Client) -> None:
    rows = sql(admin, "SELECT count() AS n FROM users FINAL")
    assert rows[0]["n"] >= 1
    write = admin.post("/api/admin/sql", json={"sql": "INSERT INTO users (user_id) VALUES ('x')"})
    assert write.status_code == 400 and write.json()["reason"] == "not a SELECT"
    # the attacks (a write between two SELECTs, files, url(), password hashes):
    # tests/integration/test_analyst_sql.py
    sneaky = admin.post("/api/admin/sql", json={"sql": "SELECT 1; DROP TABLE users"})
    assert sneaky.status_code == 400 and sneaky.json()["reason"] == "multiple statements"
    assert sql(admin, "SELECT count() AS n FROM users FINAL")[0]["n"] >= 1


def test_health_and_readiness(server: ServeProcess) -> None:
    base = server.settings.api_url
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["status"] == "ready"
    assert set(ready["checks"]["lag"]) >= {"users.commands", "users.events"}
    # a public probe is cheap: a burst shares one check per READY_CACHE_S in each API
    # process (each caches its own; the first answer may be one cached before the burst)
    started = time.monotonic()
    stamps = {httpx.get(f"{base}/readyz").json()["checked_at"] for _ in range(20)}
    per_process = 2 + int((time.monotonic() - started) / READY_CACHE_S)
    assert len(stamps) <= server.settings.api_workers * per_process


def test_a_token_signed_with_a_guessable_secret_is_refused(server: ServeProcess) -> None:
    """Earlier releases signed with a constant from the source when no secret was set:
    anyone could mint an admin token. The install's secret is random and private."""
    import jwt

    now = int(time.time())
    claims = {"sub": "someone", "role": "admin", "iat": now, "exp": now + 600}
    for guess in ("streamfold-development-only-secret-change-me", "secret"):
        forged = jwt.encode(claims, guess, algorithm="HS256")
        answer = httpx.get(
            f"{server.settings.api_url}/api/admin/users",
            headers={"Authorization": f"Bearer {forged}"},
        )
        assert answer.status_code == 401, guess
    secret_file = server.settings.home / "jwt-secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
