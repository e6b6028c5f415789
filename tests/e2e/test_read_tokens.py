"""Keys with one purpose each, on the real stack (issue 19): a write key writes and reads
nothing; a partner's read token reads that partner's analytics and writes nothing, works
on the request after it is issued and is refused on the request after it is revoked, on
every API process (``serve`` runs two; each call below may reach either)."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_tracking import new_system
from tests.support import ServeProcess

pytestmark = pytest.mark.e2e

ANALYTICS = [
    "/v1/analytics/events",
    "/v1/analytics/stats",
    "/v1/analytics/timeseries",
    "/v1/analytics/funnel?steps=page_view&steps=signup&system={system}",
    "/v1/analytics/bounds",
    "/v1/analytics/rejections",
]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_every_analytics_route_refuses_the_write_key(
    server: ServeProcess, admin: httpx.Client
) -> None:
    key = new_system(admin)["api_key"]
    with httpx.Client(base_url=server.settings.api_url, timeout=30) as client:
        for path in ANALYTICS:
            path = path.format(system="s")
            for headers in (bearer(key), {"X-API-Key": key}):
                response = client.get(path, headers=headers)
                assert response.status_code == 403, (path, response.text)
                assert response.json()["type"] == "/problems/write-key-cannot-read"


def test_a_read_token_from_issue_to_revocation(server: ServeProcess, admin: httpx.Client) -> None:
    system = new_system(admin)
    pid = system["partner_id"]
    issued = admin.post(f"/api/admin/partners/{pid}/read-tokens", json={"name": "grafana"})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    token, token_id = body["token"], body["token_id"]
    assert token.startswith("rt_live_") and body["token_prefix"] == token[:12]
    assert issued.headers["location"].endswith(f"/read-tokens/{token_id}")

    with httpx.Client(base_url=server.settings.api_url, timeout=30) as client:
        for path in ANALYTICS:  # usable at once, on whichever process answers
            path = path.format(system=system["system_id"])
            response = client.get(path, headers=bearer(token))
            assert response.status_code == 200, (path, response.text)
        other = new_system(admin)
        response = client.get(
            f"/v1/analytics/stats?system={other['system_id']}", headers=bearer(token)
        )
        assert response.status_code == 403, response.text  # another partner's system
        refused = client.post(
            "/v1/batch", json={"batch": [{"event": "e", "userId": "u"}]}, headers=bearer(token)
        )
        assert refused.status_code == 403 and refused.json()["code"] == "read-token-cannot-write"

        # the partner manages its own tokens with a token of its own, never another's
        own = client.post(f"/api/admin/partners/{pid}/read-tokens", json={"name": "notebook"},
                          headers=bearer(token))  # fmt: skip
        assert own.status_code == 201, own.text
        foreign = client.get(
            f"/api/admin/partners/{other['partner_id']}/read-tokens", headers=bearer(token)
        )
        assert foreign.status_code == 403, foreign.text
        listed = client.get(f"/api/admin/partners/{pid}/read-tokens", headers=bearer(token))
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert [t["name"] for t in items] == ["grafana", "notebook"]
        assert all("token" not in t and "token_hash" not in t for t in items)
        shown = admin.get(f"/api/admin/partners/{pid}").json()
        assert token not in str(shown) and "token_hash" not in str(shown)

        revoked = admin.delete(f"/api/admin/partners/{pid}/read-tokens/{token_id}")
        assert revoked.status_code == 200, revoked.text
        for _ in range(6):  # every call after the revocation, whichever process answers
            response = client.get("/v1/analytics/bounds", headers=bearer(token))
            assert response.status_code == 401, response.text
            assert response.json()["type"] == "/problems/revoked-token"
        again = admin.delete(f"/api/admin/partners/{pid}/read-tokens/{token_id}")
        assert again.status_code == 409, again.text
        still = client.get("/v1/analytics/bounds", headers=bearer(own.json()["token"]))
        assert still.status_code == 200, still.text
        # admin JWTs keep reading every partner's analytics
        assert admin.get("/v1/analytics/bounds").status_code == 200


def test_deactivating_the_partner_ends_its_tokens(
    server: ServeProcess, admin: httpx.Client
) -> None:
    system = new_system(admin)
    pid = system["partner_id"]
    token = admin.post(f"/api/admin/partners/{pid}/read-tokens", json={"name": "t"}).json()["token"]
    assert admin.post(f"/api/admin/partners/{pid}/deactivate").status_code == 200
    with httpx.Client(base_url=server.settings.api_url, timeout=30) as client:
        response = client.get("/v1/analytics/bounds", headers=bearer(token))
        assert response.status_code == 401 and response.json()["type"] == "/problems/revoked-token"
