"""FastAPI dependencies as ``Annotated`` aliases: what a route needs, injected."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis
from starlette.requests import HTTPConnection

from api import idempotency
from api.problems import Problem
from api.security import (
    Accounts,
    InvalidToken,
    LoginThrottle,
    Principal,
    RegistrationThrottle,
    read_token,
)
from connectors.clickhouse import ClickHouse
from pipeline.common.settings import Settings
from pipeline.edge.ingest import Ingest
from pipeline.projections.partner_keys.lookups import (
    API_KEY_PREFIX,
    READ_TOKEN_PREFIX,
    KeyResolver,
    ReadGrant,
    partner_systems,
    resolve_read_token,
)
from pipeline.write.command_bus import CommandBus

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once by the entrypoint."""

    settings: Settings
    clickhouse: ClickHouse
    redis: Redis
    bus: CommandBus
    keys: KeyResolver
    ingest: Ingest


async def _services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in its thread pool, on every request
    # (7 % of an API process under ingestion, measured with py-spy --gil)
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(_services)]

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def per_app(request: HTTPConnection, name: str, make: Callable[[], T]) -> T:
    """One ``make()`` per app, kept on ``app.state`` (made on first use)."""
    made = getattr(request.app.state, name, None)
    if made is None:
        made = make()
        setattr(request.app.state, name, made)
    return made


def accounts(request: HTTPConnection, services: Services) -> Accounts:
    """This API process's :class:`Accounts` (the users read model, briefly cached)."""
    return per_app(
        request,
        "accounts",
        lambda: Accounts(services.clickhouse, ttl_s=services.settings.principal_cache_ttl_s),
    )


async def _login_throttle(request: Request, services: ServicesDep) -> LoginThrottle:
    return per_app(
        request, "login_throttle", lambda: LoginThrottle(services.redis, services.settings)
    )


LoginThrottleDep = Annotated[LoginThrottle, Depends(_login_throttle)]


async def _registration_throttle(request: Request, services: ServicesDep) -> RegistrationThrottle:
    return per_app(
        request,
        "registration_throttle",
        lambda: RegistrationThrottle(services.redis, services.settings),
    )


RegistrationThrottleDep = Annotated[RegistrationThrottle, Depends(_registration_throttle)]


def _inactive() -> Problem:
    return Problem(
        401, "unauthorized", "this account is not active", headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(conn: HTTPConnection, services: Services, token: str | None) -> Principal:
    """The caller behind ``token``: a valid token (signature, expiry, issuer, audience)
    whose user is active now, with the role the ``users`` read model shows now (cached
    ``principal_cache_ttl_s``; ``api.security.Accounts``). Raises Problem 401 otherwise.
    ``conn``: the request or the WebSocket."""
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if not token:
        raise Problem(401, "unauthorized", "a bearer token is required", headers=unauthorized)
    try:
        user_id = read_token(services.settings, token)
    except InvalidToken as exc:
        raise Problem(401, "unauthorized", f"invalid token: {exc}", headers=unauthorized) from exc
    accounts_ = accounts(conn, services)
    account = await accounts_.get(user_id)
    if account is None or not account.active:
        # A refusal is never from the cache alone: a reactivation counts the moment the
        # read model shows it. Refusals cost a query each; grants are what must be prompt.
        account = await accounts_.get(user_id, fresh=True)
    if account is None or not account.active:
        # deactivated or deleted since the token was issued: the token dies with the account
        raise _inactive()
    return Principal(user_id=user_id, role=account.role)


async def _principal(
    request: Request, services: ServicesDep, token: Annotated[str | None, Depends(_bearer)]
) -> Principal:
    """The caller of a route that needs a user (:func:`authenticate`)."""
    return await authenticate(request, services, token)


def _requires(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, 403 unless their current role is one of ``roles``. A
    cached role that is refused is re-read first, so a role granted works on every API
    process as soon as the read model shows it (``create-admin`` waits for exactly that)."""
    wanted = " or ".join(roles)

    async def dependency(
        request: Request,
        services: ServicesDep,
        principal: Annotated[Principal, Depends(_principal)],
    ) -> Principal:
        if principal.role in roles:
            return principal
        account = await accounts(request, services).get(principal.user_id, fresh=True)
        if account is None or not account.active:
            raise _inactive()
        if account.role not in roles:
            raise Problem(403, "forbidden", f"this route needs the {wanted} role")
        return Principal(user_id=principal.user_id, role=account.role)

    return dependency


async def _idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Resubmitting with the same key within 24 h returns the first "
            "result and sends nothing new; the same key with another request is a 422.",
        ),
    ] = None,
) -> str | None:
    if key:
        secret = request.app.state.services.settings.jwt_secret  # set by every API role
        keyed = secret.get_secret_value().encode() if secret is not None else b""
        await idempotency.note_request(request, key, keyed)
    return key


IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]
"""The request's ``Idempotency-Key`` (``api/idempotency.py``: remembered for 24 h)."""

PrincipalDep = Annotated[Principal, Depends(_principal)]
_admin = _requires("admin")
AdminDep = Annotated[Principal, Depends(_admin)]
StaffDep = Annotated[Principal, Depends(_requires("admin", "teacher"))]
"""Who may write identity records (issue 11: admins and teachers)."""
_reader = _requires("admin", "analyst")
ReaderDep = Annotated[Principal, Depends(_reader)]
"""Who may run analyst SQL and read every partner's analytics: admins and analysts
(issue 23; an analyst has no write route and sees no account data)."""


def _basic_user(header: str) -> str | None:
    # RFC 7617: base64("user:password"). Segment's HTTP Tracking API puts the write key in
    # the user name with an empty password; a value without a colon is the key alone.
    try:
        decoded = base64.b64decode(header.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def header_key(request: Request) -> str | None:
    """The key in the headers, or None: ``Authorization: Bearer sk_live_...`` (or a read
    token's ``rt_live_...``, so the routes can say it is the wrong credential),
    ``Authorization: Basic base64(key + ":")`` (how Segment's libraries send a write key;
    verified in segment-analytics-python 2.4 ``request.py`` and analytics-next 1.84
    ``fetch-dispatcher.js``), or ``X-API-Key``. A bearer value that is neither (an admin
    JWT, a Segment OAuth token) is not one.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith((API_KEY_PREFIX, READ_TOKEN_PREFIX)):
        return value.strip()
    if scheme.lower() == "basic" and (user := _basic_user(value)):
        return user
    return request.headers.get("x-api-key")


@dataclass(frozen=True)
class Scope:
    """What analytics a caller may read: ``system_ids`` None = every system (admin)."""

    system_ids: frozenset[str] | None

    def allows(self, system_id: str) -> bool:
        return self.system_ids is None or system_id in self.system_ids

    def restrict(self, requested: str | None) -> list[str] | None:
        """The systems a query covers: the requested one (403 if not allowed), else all
        the caller may see (None = no restriction)."""
        if requested is not None:
            if not self.allows(requested):
                raise Problem(403, "forbidden", f"no access to system {requested}")
            return [requested]
        return None if self.system_ids is None else sorted(self.system_ids)


async def read_grant(services: Services, token: str) -> ReadGrant:
    """The active grant of read token ``token``. Raises ``Problem`` 401 ``unknown-token``
    or ``revoked-token`` (problem+json, ``WWW-Authenticate``)."""
    unauthorized = {"WWW-Authenticate": "Bearer"}
    grant = await resolve_read_token(services.redis, token)
    if grant is None:
        raise Problem(401, "unknown-token", "unknown read token", headers=unauthorized)
    if not grant.active:
        raise Problem(401, "revoked-token", "this read token is revoked", headers=unauthorized)
    return grant


def _write_key_cannot_read() -> Problem:
    return Problem(
        403,
        "write-key-cannot-read",
        "a write key only sends events (it is public in web pages); read analytics with the "
        f"partner's read token (Authorization: Bearer {READ_TOKEN_PREFIX}…, issued at "
        "POST /api/admin/partners/{id}/read-tokens) or an admin token",
        use="read-token",
    )


async def _scope(
    request: Request, services: ServicesDep, token: Annotated[str | None, Depends(_bearer)]
) -> Scope:
    """Who reads analytics, and what: a partner read token (``Bearer rt_live_…``) every
    system of its partner; an admin's or an analyst's JWT all systems. A write key is refused (403
    ``write-key-cannot-read``): it is embedded in web pages, so anyone can read it.
    Seed 002's API keys; Segment's write keys versus its access tokens."""
    key = header_key(request)
    if key is not None and not key.startswith(READ_TOKEN_PREFIX):
        raise _write_key_cannot_read()
    if key is not None:
        grant = await read_grant(services, key)
        return Scope(frozenset(await partner_systems(services.redis, grant.partner_id)))
    await _reader(request, services, await _principal(request, services, token))
    return Scope(None)


ScopeDep = Annotated[Scope, Depends(_scope)]


async def _partner_manager(
    request: Request,
    partner_id: str,
    services: ServicesDep,
    token: Annotated[str | None, Depends(_bearer)],
) -> str:
    """Who manages ``partner_id``'s read tokens: an admin, or the partner itself with an
    active read token of its own (``Bearer rt_live_…``; a write key never). Returns the
    actor for the command: the admin's user id or ``read-token:<token id>``.

    Raises ``Problem`` 401 (no, unknown or revoked credential), 403 (a write key, another
    partner's token, a user who is not an admin)."""
    key = header_key(request)
    if key is not None and not key.startswith(READ_TOKEN_PREFIX):
        raise Problem(403, "forbidden", "a write key only sends events", use="read-token")
    if key is not None:
        grant = await read_grant(services, key)
        if grant.partner_id != partner_id:
            raise Problem(403, "forbidden", "this read token belongs to another partner")
        return f"read-token:{grant.token_id}"
    principal = await _admin(request, services, await _principal(request, services, token))
    return principal.user_id


PartnerManagerDep = Annotated[str, Depends(_partner_manager)]
