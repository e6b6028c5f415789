"""Every 201 names what it created (issue 25, seed 002: ``Location`` on every 201;
RFC 9110 15.3.2), and the named resource answers a GET (once its read model has it)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import ServeProcess, new_user, wait_for

pytestmark = pytest.mark.e2e


def _located(client: httpx.Client, created: httpx.Response) -> dict:
    """The body of a GET on ``created``'s Location, waiting for the read model to have it."""
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith("/"), location

    def read() -> dict | None:
        response = client.get(location)
        return response.json() if response.status_code == 200 else None

    return wait_for(read, timeout_s=30, what=f"GET {location}")


def test_every_201_has_a_location_that_answers(admin: httpx.Client, server: ServeProcess) -> None:
    made = admin.post("/api/admin/users", json=new_user("located"))
    assert _located(admin, made)["user_id"] == made.json()["id"]

    tag = uuid.uuid4().hex[:8]
    body = {"username": f"loc_{tag}", "email": f"loc.{tag}@example.org",
            "password": "correct horse battery", "display_name": "Lo Cated"}  # fmt: skip
    api = server.settings.api_url
    registered = httpx.post(f"{api}/api/users/register", json=body, timeout=30)
    login = {"username": body["username"], "password": body["password"]}
    token = httpx.post(f"{api}/api/auth/token", data=login, timeout=30).json()["access_token"]
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}) as me:
        assert _located(me, registered)["username"] == body["username"]
        chirp = me.post("/api/chirps", json={"text": "where am I"})
        assert _located(me, chirp)["text"] == "where am I"
        followed = me.post(f"/api/users/{made.json()['id']}/follow")
        following = _located(me, followed)
        assert made.json()["id"] in [u["id"] for u in following["items"]]

    prospect = admin.post(
        "/api/prospects",
        json={"first_name": "Lo", "last_name": "Cated", "email": f"lo.{tag}@example.org"},
    )
    assert _located(admin, prospect)["prospect_id"] == prospect.json()["id"]

    partner = admin.post("/api/admin/partners", json={"name": "Located", "email": "p@example.org"})
    partner_id = partner.json()["id"]
    assert _located(admin, partner)["partner_id"] == partner_id
    system = admin.post(f"/api/admin/partners/{partner_id}/systems", json={"name": "web"})
    systems = _located(admin, system)["systems"]
    assert system.json()["system_id"] in [s["system_id"] for s in systems]
