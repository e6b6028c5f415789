"""The analyst role (issue 23, first part): every partner's analytics and analyst SQL over
the tracking tables; no admin route, no account data. Route by route, on the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_identity import user_client
from tests.e2e.test_tracking import new_system
from tests.support import PROBLEM, ServeProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def analyst(server: ServeProcess, admin: httpx.Client) -> Iterator[httpx.Client]:
    client, _, _ = user_client(server, admin, "analyst")
    with client:
        yield client


def sql(client: httpx.Client, statement: str) -> httpx.Response:
    return client.post("/api/admin/sql", json={"sql": statement})


def test_an_analyst_reads_every_partner_s_analytics_and_the_tracking_tables(
    analyst: httpx.Client, admin: httpx.Client
) -> None:
    system = new_system(admin)["system_id"]
    for path, params in [
        ("/v1/analytics/stats", {}),
        ("/v1/analytics/bounds", {"system": system}),  # any partner's system
        ("/v1/analytics/events", {"limit": 1}),
        ("/v1/analytics/rejections", {}),
    ]:
        answer = analyst.get(path, params=params)
        assert answer.status_code == 200, (path, answer.text)
    counted = sql(analyst, "SELECT count() AS n FROM tracking_events")
    assert counted.status_code == 200, counted.text
    assert counted.json()["columns"] == ["n"]
    by_type = sql(analyst, "SELECT event_type, count() FROM event_log GROUP BY event_type")
    assert by_type.status_code == 200, by_type.text  # the audit trail without its payload


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT email FROM users",
        "SELECT count() FROM users",
        "SELECT password_hash FROM accounts",
    ],
)
def test_an_analyst_sees_no_account_data(
    analyst: httpx.Client, admin: httpx.Client, statement: str
) -> None:
    refused = sql(analyst, statement)
    assert refused.status_code == 400 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "/problems/sql-not-allowed", refused.text
    if "accounts" not in statement:  # an admin still reads the users read model
        assert sql(admin, statement).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/admin/users", None),
        ("POST", "/api/admin/users", {"username": "x", "email": "x@example.org",
                                      "first_name": "X", "last_name": "Y",
                                      "password": "a long secret", "role": "admin"}),
        ("GET", "/api/admin/partners", None),
        ("POST", "/api/admin/partners", {"name": "p", "email": "p@example.org"}),
        ("GET", "/api/admin/projections", None),
        ("POST", "/api/auth/password-links", {"user_id": "u"}),
        ("GET", "/api/students", None),
        ("POST", "/api/prospects", {"first_name": "A", "last_name": "B", "email": "a@b.org"}),
        ("GET", "/api/admin/inbound-events", None),
    ],
)  # fmt: skip
def test_an_analyst_may_not_call_admin_or_staff_routes(
    analyst: httpx.Client, method: str, path: str, body: dict | None
) -> None:
    answer = analyst.request(method, path, json=body)
    assert answer.status_code == 403, (path, answer.text)
    assert answer.headers["content-type"] == PROBLEM
