"""Bearer tokens: HS256 JWTs (PyJWT) carrying the user id and role, RFC 7519."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from pipeline.settings import Settings

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: str


class InvalidToken(Exception):
    """The bearer token is malformed, expired or signed with another key."""


def _key(settings: Settings) -> str:
    if settings.jwt_secret is None:
        # the entrypoints fill it (deploy.secrets.with_jwt_secret) before building the API
        raise RuntimeError("no JWT secret in the settings")
    return settings.jwt_secret.get_secret_value()


def issue_token(settings: Settings, principal: Principal) -> str:
    now = int(time.time())
    claims = {
        "sub": principal.user_id,
        "role": principal.role,
        "iat": now,
        "exp": now + settings.jwt_ttl_s,
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def read_token(settings: Settings, token: str) -> Principal:
    """Raises InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return Principal(user_id=str(claims["sub"]), role=str(claims.get("role", "")))
