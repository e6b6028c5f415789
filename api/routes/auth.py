"""OAuth2 password flow (RFC 6749 §4.3): email or username + password -> a bearer JWT.

A login costs an argon2id verification (19 MiB, ~41 ms), so it is throttled before any
hashing (per account and per client address, ``api.security.LoginThrottle``), and every
try that passes the throttle does the same work whether or not the account exists.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import LoginThrottleDep, ServicesDep
from api.models.users import Token
from api.problems import Problem
from api.security import Principal, dummy_password_hash, issue_token
from pipeline.domain.errors import InvalidValue
from pipeline.domain.users.commands import RecordLogin
from pipeline.domain.values import HashedPassword, verify_password
from pipeline.projections import users
from pipeline.write.routing import command_id_for

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong login or password, or the account is not active."},
    429: {"description": "Too many failed logins for this account or from this address; "
          "``Retry-After`` says when to try again (problem+json)."},
}  # fmt: skip


def _stored_hash(row: dict[str, Any] | None) -> HashedPassword | None:
    if row is None:
        return None
    try:
        return HashedPassword.parse(row["password_hash"])
    except InvalidValue:
        return None


def _verify(stored: HashedPassword | None, password: str) -> bool:
    # The same argon2id work for every try: a missing account is checked against the
    # dummy hash (and so never matches, whatever the password).
    if stored is None:
        verify_password(dummy_password_hash(), password)
        return False
    return verify_password(stored, password)


@router.post("/token", response_model=Token, responses=_RESPONSES)
async def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    throttle: LoginThrottleDep,
) -> Token:
    """Check the password against the ``accounts`` read model; record the login (a
    RecordLogin command, not waited for).

    429 (``Retry-After``: whole seconds) when the account or the client address has used
    its failed tries (``Settings.login_tries_per_account`` / ``_per_address`` per
    ``login_window_s``), before any hashing. 401 for a wrong login or password or an
    inactive or deleted account, after the same argon2id verification in every case: an
    unknown account is checked against ``dummy_password_hash()`` (OWASP Authentication
    Cheat Sheet: responses must not reveal whether an account exists). 503 when Redis
    does not answer: the throttle fails closed."""
    denied = Problem(
        401,
        "invalid-credentials",
        "wrong login or password",
        headers={"WWW-Authenticate": "Bearer"},
    )
    login = form.username.strip().lower()
    address = request.client.host if request.client else "unknown"
    wait_s = await throttle.take(login, address)
    if wait_s > 0:
        raise Problem(
            429,
            "too-many-logins",
            "too many failed logins for this account or from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )
    row = await users.login(services.clickhouse, login)
    stored = _stored_hash(row)
    matches = await asyncio.to_thread(_verify, stored, form.password)
    if row is None or stored is None or not matches or row["status"] != "active":
        raise denied
    await throttle.succeeded(login, address)
    now = datetime.now(UTC)
    command_id = command_id_for(None)
    record = RecordLogin(
        command_id=command_id,
        aggregate_id=row["user_id"],
        issued_at=now,
        correlation_id=command_id,
        actor=row["user_id"],
        logged_in_at=now,
    )
    try:
        await services.bus.send(record)
    except Exception as exc:  # a lost login timestamp must not refuse a valid login
        log.warning("RecordLogin not queued", user_id=row["user_id"], error=str(exc))
    principal = Principal(user_id=row["user_id"], role=row["role"])
    return Token(
        access_token=issue_token(services.settings, principal),
        expires_in=services.settings.jwt_ttl_s,
    )
