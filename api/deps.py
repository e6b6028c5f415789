"""FastAPI dependencies as ``Annotated`` aliases: what a route needs, injected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from redis.asyncio import Redis

from api.problems import Problem
from api.security import InvalidToken, Principal, read_token
from connectors.clickhouse import ClickHouse
from connectors.commands import CommandBus
from pipeline.settings import Settings


@dataclass(frozen=True)
class Services:
    """Everything the routes use, built once by the entrypoint."""

    settings: Settings
    clickhouse: ClickHouse
    redis: Redis
    bus: CommandBus


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


PrincipalDep = Annotated[Principal, Depends(_principal)]
AdminDep = Annotated[Principal, Depends(_admin)]
