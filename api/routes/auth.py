"""OAuth2 password flow (RFC 6749 §4.3): email or username + password -> a bearer JWT."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import ServicesDep
from api.models import Token
from api.problems import Problem
from api.security import Principal, issue_token
from pipeline.domain.errors import InvalidValue
from pipeline.domain.users.commands import RecordLogin
from pipeline.domain.values import HashedPassword, verify_password
from pipeline.routing import command_id_for

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])

LOGIN_SQL = """
    SELECT u.user_id AS user_id, u.role AS role, u.status AS status,
           a.password_hash AS password_hash
    FROM users AS u FINAL
    INNER JOIN accounts AS a FINAL ON a.user_id = u.user_id
    WHERE u.email = {login:String} OR u.username = {login:String}
    LIMIT 1
"""


@router.post("/token", response_model=Token)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], services: ServicesDep
) -> Token:
    """Check the password against the ``accounts`` read model; record the login (a
    RecordLogin command, not waited for). 401 for any mismatch, inactive or deleted user."""
    denied = Problem(
        401,
        "invalid-credentials",
        "wrong login or password",
        headers={"WWW-Authenticate": "Bearer"},
    )
    rows = await services.clickhouse.query(LOGIN_SQL, {"login": form.username.strip().lower()})
    if not rows or rows[0]["status"] != "active":
        raise denied
    row = rows[0]
    try:
        hashed = HashedPassword.parse(row["password_hash"])
    except InvalidValue as exc:
        raise denied from exc
    if not await asyncio.to_thread(verify_password, hashed, form.password):
        raise denied
    now = datetime.now(UTC)
    command_id = command_id_for(None)
    login = RecordLogin(
        command_id=command_id,
        aggregate_id=row["user_id"],
        issued_at=now,
        correlation_id=command_id,
        actor=row["user_id"],
        logged_in_at=now,
    )
    try:
        await services.bus.send(login)
    except Exception as exc:  # a lost login timestamp must not refuse a valid login
        log.warning("RecordLogin not queued", user_id=row["user_id"], error=str(exc))
    principal = Principal(user_id=row["user_id"], role=row["role"])
    return Token(
        access_token=issue_token(services.settings, principal),
        expires_in=services.settings.jwt_ttl_s,
    )
