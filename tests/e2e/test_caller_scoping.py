"""What one caller's commands show another (issue 7, section 4), against a real serve
process: a command's result is for the user who issued it and for admins (anyone else
gets the 404 of an unknown id), and an ``Idempotency-Key`` is scoped to its caller.

A second admin plays the other caller; it is demoted again before each test ends (the
session ``admin`` client stays the configured admin).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import PROBLEM, ServeProcess, new_user, wait_for

pytestmark = pytest.mark.e2e


def person(**over: Any) -> dict[str, Any]:
    return new_user("scope", **over)


def user(
    admin: httpx.Client, server: ServeProcess, body: dict[str, Any]
) -> tuple[str, httpx.Client]:
    """Create ``body``'s user; (its id, a client logged in as it)."""
    created = admin.post("/api/admin/users", json=body)
    assert created.status_code == 201, created.text

    def login() -> str | None:
        response = httpx.post(
            f"{server.settings.api_url}/api/auth/token",
            data={"username": body["email"], "password": body["password"]},
            timeout=30,
        )
        return response.json()["access_token"] if response.status_code == 200 else None

    token = wait_for(login, timeout_s=30, what=f"{body['email']} can log in")
    client = httpx.Client(
        base_url=server.settings.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return created.json()["id"], client


@pytest.fixture
def other_admin(admin: httpx.Client, server: ServeProcess) -> Iterator[tuple[str, httpx.Client]]:
    """A second admin (id, logged-in client); demoted to teacher afterwards."""
    body = person(role="admin")
    user_id, client = user(admin, server, body)
    try:
        yield user_id, client
    finally:
        client.close()
        demoted = admin.put(
            f"/api/admin/users/{user_id}",
            json={"first_name": body["first_name"], "last_name": body["last_name"],
                  "role": "teacher"},
        )  # fmt: skip
        assert demoted.status_code == 200, demoted.text


def result_of(client: httpx.Client, command_id: str) -> httpx.Response:
    """GET /api/commands/{id} once the result is in the Redis read model (admins see all)."""
    return wait_for(
        lambda: (r := client.get(f"/api/commands/{command_id}")).status_code == 200 and r,
        timeout_s=20,
        what=f"the result of command {command_id}",
    )


def test_a_result_is_for_its_issuer_and_admins_only(
    admin: httpx.Client, server: ServeProcess, other_admin: tuple[str, httpx.Client]
) -> None:
    issuer_id, issuer = other_admin
    body = person()
    created = issuer.post("/api/admin/users", json=body)
    assert created.status_code == 201, created.text
    command_id = created.json()["command_id"]
    assert result_of(admin, command_id).json()["id"] == created.json()["id"]  # any admin
    assert issuer.get(f"/api/commands/{command_id}").status_code == 200  # its issuer

    _, student = user(admin, server, person())
    with student:
        hidden = student.get(f"/api/commands/{command_id}")
        unknown = student.get(f"/api/commands/{uuid.uuid4()}")
        # not a 403: the answer must not tell that such a command exists
        assert hidden.status_code == unknown.status_code == 404, hidden.text
        assert hidden.headers["content-type"] == PROBLEM
        assert hidden.json()["type"] == unknown.json()["type"] == "/problems/no-result"
        assert created.json()["id"] not in hidden.text

    # the issuer, no longer an admin, still reads what it issued
    demote = admin.put(
        f"/api/admin/users/{issuer_id}",
        json={"first_name": "Ada", "last_name": "Lovelace", "role": "teacher"},
    )
    assert demote.status_code == 200, demote.text
    wait_for(
        lambda: issuer.get("/api/admin/users").status_code == 403,
        timeout_s=20,
        what="the demotion to reach the issuer's requests",
    )
    mine = issuer.get(f"/api/commands/{command_id}")
    assert mine.status_code == 200 and mine.json()["status"] == "accepted"
    # ...but not the admins' commands
    others = admin.post("/api/admin/users", json=person())
    assert others.status_code == 201
    result_of(admin, others.json()["command_id"])
    assert issuer.get(f"/api/commands/{others.json()['command_id']}").status_code == 404


@pytest.mark.parametrize("kind", ["text", "uuid"])
def test_one_idempotency_key_from_two_callers_is_two_commands(
    admin: httpx.Client, other_admin: tuple[str, httpx.Client], kind: str
) -> None:
    """Before: the second caller was answered with the first caller's result (its user
    never created), since the key alone named the command (a UUID key was the id)."""
    _, other = other_admin
    key = str(uuid.uuid4()) if kind == "uuid" else f"retry-{uuid.uuid4().hex[:8]}"
    mine, theirs = person(), person()
    first = admin.post("/api/admin/users", json=mine, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    second = other.post("/api/admin/users", json=theirs, headers={"Idempotency-Key": key})
    assert second.status_code == 201, second.text
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["command_id"] != first.json()["command_id"]
    assert second.json()["event_ids"] and not set(second.json()["event_ids"]) & set(
        first.json()["event_ids"]
    )
    # each caller's retry is still answered with its own first result, nothing new
    again = other.post("/api/admin/users", json=theirs, headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.json() == second.json()
    search = {"search": theirs["email"]}
    found = wait_for(
        lambda: admin.get("/api/admin/users", params=search).json()["items"],
        timeout_s=20,
        what="the second caller's user in the read model",
    )
    assert [u["user_id"] for u in found] == [second.json()["id"]]
