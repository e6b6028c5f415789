"""FastAPI dependencies as ``Annotated`` aliases: what a route needs, injected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis

from api.problems import Problem
from api.security import InvalidToken, Principal, read_token
from connectors.clickhouse import ClickHouse
from connectors.commands import CommandBus
from connectors.ingest import Ingest
from connectors.keys import API_KEY_PREFIX, KeyResolver, SystemKey, partner_systems
from pipeline.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once by the entrypoint."""

    settings: Settings
    clickhouse: ClickHouse
    redis: Redis
    bus: CommandBus
    keys: KeyResolver
    ingest: Ingest


def _services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(_services)]

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def _principal(services: ServicesDep, token: Annotated[str | None, Depends(_bearer)]) -> Principal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if not token:
        raise Problem(401, "unauthorized", "a bearer token is required", headers=unauthorized)
    try:
        return read_token(services.settings, token)
    except InvalidToken as exc:
        raise Problem(401, "unauthorized", f"invalid token: {exc}", headers=unauthorized) from exc


def _admin(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.role != "admin":
        raise Problem(403, "forbidden", "this route needs the admin role")
    return principal


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Resubmitting with the same key returns the first result; nothing new.",
    ),
]

PrincipalDep = Annotated[Principal, Depends(_principal)]
AdminDep = Annotated[Principal, Depends(_admin)]


def _api_key(request: Request) -> str | None:
    """``Authorization: Bearer sk_live_...`` or ``X-API-Key: sk_live_...``."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip().startswith(API_KEY_PREFIX):
        return header[7:].strip()
    return request.headers.get("x-api-key")


async def _system(request: Request, services: ServicesDep) -> SystemKey:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    api_key = _api_key(request)
    if not api_key:
        raise Problem(401, "unauthorized", "an API key is required", headers=unauthorized)
    system = await services.keys.resolve(api_key)
    if system is None:
        raise Problem(401, "unknown-key", "unknown API key", headers=unauthorized)
    if not system.active:
        raise Problem(401, "revoked-key", "this API key is revoked", headers=unauthorized)
    return system


SystemDep = Annotated[SystemKey, Depends(_system)]


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


async def _scope(
    request: Request, services: ServicesDep, token: Annotated[str | None, Depends(_bearer)]
) -> Scope:
    """An API key scopes to every system of its partner; an admin JWT to all systems."""
    if _api_key(request):
        system = await _system(request, services)
        systems = await partner_systems(services.redis, system.partner_id)
        return Scope(frozenset(systems) | {system.system_id})
    _admin(_principal(services, token))
    return Scope(None)


ScopeDep = Annotated[Scope, Depends(_scope)]
