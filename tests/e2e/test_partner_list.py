"""``GET /api/admin/partners`` (issue 25, seed 002): partners by name, searched by a part
of the name or e-mail, paged, with their status and system counts."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import wait_for

pytestmark = pytest.mark.e2e


def test_partners_are_listed_searched_and_paged_with_their_systems(admin: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    made = {}
    for name in ("Alpha", "beta", "Gamma"):  # listed by name, whatever its case
        body = {"name": f"{name} {tag}", "email": f"{name.lower()}@{tag}.org"}
        answer = admin.post("/api/admin/partners", json=body)
        assert answer.status_code == 201, answer.text
        made[name] = answer.json()["id"]
    for system in ("web", "app"):
        added = admin.post(f"/api/admin/partners/{made['Alpha']}/systems", json={"name": system})
        assert added.status_code == 201, added.text
    [web] = [s for s in admin.get(f"/api/admin/partners/{made['Alpha']}").json()["systems"]
             if s["name"] == "web"]  # fmt: skip
    off = admin.post(f"/api/admin/partners/{made['Alpha']}/systems/{web['system_id']}/deactivate")
    assert off.status_code == 200, off.text
    assert admin.post(f"/api/admin/partners/{made['Gamma']}/deactivate").status_code == 200

    def listed(**params: object) -> dict | None:
        answer = admin.get("/api/admin/partners", params={"search": tag, **params})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ready = body["total"] == 3 and all(p["status"] for p in body["items"])
        return body if ready else None

    body = wait_for(listed, timeout_s=30, what="the three partners in the list")
    items = {p["name"].split()[0]: p for p in body["items"]}
    assert [p["name"].split()[0] for p in body["items"]] == ["Alpha", "beta", "Gamma"]
    assert (items["Alpha"]["systems"], items["Alpha"]["active_systems"]) == (2, 1)
    assert (items["Gamma"]["status"], items["Gamma"]["systems"]) == ("inactive", 0)
    assert items["beta"]["partner_id"] == made["beta"]

    second = admin.get("/api/admin/partners", params={"search": tag, "page": 2, "page_size": 2})
    assert [p["name"].split()[0] for p in second.json()["items"]] == ["Gamma"]
    by_mail = admin.get("/api/admin/partners", params={"search": f"beta@{tag}"}).json()
    assert [p["partner_id"] for p in by_mail["items"]] == [made["beta"]]
    literal = admin.get("/api/admin/partners", params={"search": f"{tag}%"}).json()
    assert literal["total"] == 0  # % is searched for, not a wildcard
