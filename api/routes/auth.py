"""OAuth2 password flow (RFC 6749 §4.3): email or username + password -> a bearer JWT.

A login costs an argon2id verification (19 MiB, ~41 ms), so it is throttled before any
hashing (per account and per client address, ``api.security.LoginThrottle``), and every
try that passes the throttle does the same work whether or not the account exists.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from api import correlation, password_links
from api.deps import LoginThrottleDep, Services, ServicesDep, StaffDep
from api.models.common import CommandOutcome
from api.models.users import (
    PasswordLinkIssued,
    PasswordLinkRequest,
    PasswordSet,
    Token,
)
from api.problems import Problem
from api.replies import command_fields, run_command
from api.security import Principal, dummy_password_hash, issue_token
from pipeline.domain.errors import InvalidValue
from pipeline.domain.identity.reactions import unusable_password_hash
from pipeline.domain.users.commands import RecordLogin, UpdateAccount
from pipeline.domain.values import HashedPassword, hash_password, verify_password
from pipeline.projections import users
from pipeline.write.routing import command_id_for

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])

_LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such user (problem+json)."},
    409: {"description": "``link-used`` or ``password-set`` (problem+json)."},
    410: {"description": "``link-expired``: the link expired or never existed (problem+json)."},
}
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
        correlation_id=correlation.current() or command_id,
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


@router.post("/password-links", status_code=201, response_model=PasswordLinkIssued,
             responses=_LINK_RESPONSES)  # fmt: skip
async def issue_password_link(
    body: PasswordLinkRequest, services: ServicesDep, _who: StaffDep
) -> PasswordLinkIssued:
    """Staff (admin or teacher): a one-time link for the login of a person converted from
    a prospect (issue 22), valid ``STREAMFOLD_PASSWORD_LINK_TTL_S``. Only a login that has
    never had a password is served: 404 for an unknown user, 409 ``password-set`` for a
    login with a password (a link must not take an account over)."""
    await _without_password(services, body.user_id)
    link = await password_links.issue(
        services.redis, body.user_id, services.settings.password_link_ttl_s
    )
    return PasswordLinkIssued(
        token=link.token, expires_at=datetime.fromtimestamp(link.expires_at, UTC)
    )


@router.post("/password", response_model=CommandOutcome, responses=_LINK_RESPONSES)
async def set_password(body: PasswordSet, services: ServicesDep) -> JSONResponse:
    """Set the first password of a converted person's login with a one-time link's token
    (no bearer token: the link is the proof). 422 for a password outside 8-128 characters
    (the link is not used up); 410 ``link-expired`` (or unknown), 409 ``link-used``, 409
    ``password-set`` when the login has a password already. Then sign in at ``/token``."""
    user_id = await password_links.redeem(services.redis, body.token)
    await _without_password(services, user_id)
    hashed = await asyncio.to_thread(hash_password, body.password.get_secret_value())
    command = UpdateAccount(**command_fields(None, user_id, user_id), password_hash=hashed.value)
    login_ready = partial(users.version, services.clickhouse)  # the answer: "sign in now"
    return await run_command(services, command, read_model=login_ready)


async def _without_password(services: Services, user_id: str) -> None:
    """Raise 404 when the read model has no login ``user_id``, 409 ``password-set`` when it
    holds another hash than the unusable one a conversion gives."""
    row = await users.user(services.clickhouse, user_id)
    credentials = None if row is None else await users.login(services.clickhouse, row["username"])
    if row is None or credentials is None:
        raise Problem(404, "not-found", f"no user {user_id}")
    if credentials["password_hash"] != unusable_password_hash(user_id):
        raise Problem(409, "password-set", "this login has a password: sign in with it")
