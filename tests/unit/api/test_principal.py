"""Bearer tokens: issuer and audience are required (RFC 7519 §4.1.1, §4.1.3), and the
role and status of the caller come from the ``users`` read model at request time, not
from the token (issue 7, section 2, item 2)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from api import problems
from api.deps import AdminDep, PrincipalDep, Services
from api.security import (
    Account,
    Accounts,
    InvalidToken,
    Principal,
    issue_token,
    read_token,
)
from pipeline.common.settings import Settings
from pipeline.projections.users import ACCOUNT_SQL

SECRET = "s" * 32
SETTINGS = Settings(env="test", jwt_secret=SECRET)


class ReadModel:
    """``users`` rows by id; counts the queries."""

    def __init__(self, **users: tuple[str, str]) -> None:
        self.users = users
        self.queries = 0

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        assert sql == ACCOUNT_SQL
        self.queries += 1
        found = self.users.get((params or {})["id"])
        return [{"role": found[0], "status": found[1]}] if found else []


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "sub": "u-1",
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
    }
    return {k: v for k, v in (base | over).items() if v is not None}


def test_issued_tokens_name_the_issuer_and_the_audience() -> None:
    token = issue_token(SETTINGS, Principal(user_id="u-1", role="student"))
    decoded = jwt.decode(token, options={"verify_signature": False})
    assert decoded["iss"] == "streamfold" and decoded["aud"] == "streamfold-api"
    assert read_token(SETTINGS, token) == "u-1"


@pytest.mark.parametrize(
    "over",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"aud": ["another-api"]},
        {"iss": None},
        {"aud": None},
        {"iat": None},
        {"exp": int(time.time()) - 120},
    ],
    ids=repr,
)
def test_a_token_from_another_issuer_or_for_another_audience_is_refused(
    over: dict[str, Any],
) -> None:
    token = jwt.encode(claims(**over), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        read_token(SETTINGS, token)


def app(read_model: ReadModel, settings: Settings = SETTINGS) -> FastAPI:
    api = FastAPI()
    problems.install(api)
    api.state.services = Services(
        settings=settings, clickhouse=read_model, redis=None, bus=None, keys=None, ingest=None
    )  # type: ignore[arg-type]

    @api.get("/who")
    async def who(principal: PrincipalDep) -> dict[str, str]:
        return {"user_id": principal.user_id, "role": principal.role}

    @api.get("/admin")
    async def admin(principal: AdminDep) -> dict[str, str]:
        return {"user_id": principal.user_id}

    return api


async def get(api: FastAPI, path: str, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


ADMIN_TOKEN = jwt.encode(claims(), SECRET, algorithm="HS256")


async def test_the_role_is_the_read_models_not_the_tokens() -> None:
    api = app(ReadModel(**{"u-1": ("student", "active")}))
    assert (await get(api, "/who", ADMIN_TOKEN)).json() == {"user_id": "u-1", "role": "student"}
    forbidden = await get(api, "/admin", ADMIN_TOKEN)
    assert forbidden.status_code == 403 and forbidden.json()["type"] == "/problems/forbidden"


@pytest.mark.parametrize("standing", [("admin", "inactive"), ("admin", "deleted"), None])
async def test_an_inactive_deleted_or_unknown_user_is_401(standing: tuple[str, str] | None) -> None:
    api = app(ReadModel(**({"u-1": standing} if standing else {})))
    for path in ("/who", "/admin"):
        refused = await get(api, path, ADMIN_TOKEN)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"


async def test_an_active_admin_passes() -> None:
    api = app(ReadModel(**{"u-1": ("admin", "active")}))
    assert (await get(api, "/admin", ADMIN_TOKEN)).json() == {"user_id": "u-1"}


async def test_the_standing_is_cached_for_the_configured_seconds() -> None:
    now = [0.0]
    read_model = ReadModel(**{"u-1": ("admin", "active")})
    accounts = Accounts(read_model, ttl_s=2.0, timer=lambda: now[0])  # type: ignore[arg-type]
    assert await accounts.get("u-1") == Account("admin", "active")
    read_model.users["u-1"] = ("student", "active")
    now[0] = 1.9
    assert (await accounts.get("u-1")).role == "admin"  # type: ignore[union-attr]
    assert read_model.queries == 1
    now[0] = 2.1
    assert (await accounts.get("u-1")).role == "student"  # type: ignore[union-attr]
    assert read_model.queries == 2


async def test_a_zero_ttl_reads_every_time() -> None:
    read_model = ReadModel(**{"u-1": ("admin", "active")})
    api = app(read_model, Settings(env="test", jwt_secret=SECRET, principal_cache_ttl_s=0))
    for _ in range(3):
        assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 200
    assert read_model.queries == 3


async def test_a_grant_counts_at_once_though_the_old_role_is_cached() -> None:
    """Found by CI: ``create-admin`` restored the admin role, its wait passed on one API
    process, and the next request on another process was refused from that process's
    cache (the role before the grant) for up to ``principal_cache_ttl_s``."""
    read_model = ReadModel(**{"u-1": ("teacher", "active")})
    api = app(read_model, Settings(env="test", jwt_secret=SECRET, principal_cache_ttl_s=60))
    assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 403
    read_model.users["u-1"] = ("admin", "active")
    assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 200
    queries = read_model.queries
    assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 200
    assert read_model.queries == queries  # an allowed request is served from the cache


async def test_a_reactivation_counts_at_once_though_the_old_status_is_cached() -> None:
    read_model = ReadModel(**{"u-1": ("admin", "inactive")})
    api = app(read_model, Settings(env="test", jwt_secret=SECRET, principal_cache_ttl_s=60))
    assert (await get(api, "/who", ADMIN_TOKEN)).status_code == 401
    read_model.users["u-1"] = ("admin", "active")
    assert (await get(api, "/who", ADMIN_TOKEN)).status_code == 200


async def test_a_revocation_waits_out_the_cache() -> None:
    """The other direction keeps the documented bound: a demotion counts within the TTL."""
    read_model = ReadModel(**{"u-1": ("admin", "active")})
    api = app(read_model, Settings(env="test", jwt_secret=SECRET, principal_cache_ttl_s=60))
    assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 200
    read_model.users["u-1"] = ("teacher", "active")
    assert (await get(api, "/admin", ADMIN_TOKEN)).status_code == 200
