"""Authentication: bearer tokens, the token holder's current standing, the login throttle.

- Tokens are HS256 JWTs (PyJWT, RFC 7519) with ``sub`` (user id), ``role`` (for the
  client's information only), ``iat``, ``exp``, ``iss`` and ``aud``. Reading one requires
  all of them, with the configured issuer and audience (RFC 7519 §4.1.1, §4.1.3): a token
  minted for another service that shares the key is refused.
- The role in a token is never trusted: :class:`Accounts` reads the holder's role and
  status from the ``users`` read model on each request (cached for a few seconds), so a
  demoted, deactivated or deleted user loses access then, not when the token expires.
- :class:`LoginThrottle` limits failed logins per account and per client address with the
  Redis token buckets of ``connectors/ratelimit.py``; it is asked before any password
  hashing (OWASP Authentication Cheat Sheet, "Login Throttling").
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from redis.asyncio import Redis

from connectors.clickhouse import ClickHouse
from connectors.ratelimit import TokenBuckets
from pipeline.common.cache import ReadThrough
from pipeline.common.settings import Settings
from pipeline.domain.values import HashedPassword, hash_password
from pipeline.projections import users

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "iat", "exp", "iss", "aud")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's subject, with the role the read model shows now."""

    user_id: str
    role: str


class InvalidToken(Exception):
    """The bearer token is malformed, expired, signed with another key, or from another
    issuer or for another audience. The client should log in again."""


def _key(settings: Settings) -> str:
    if settings.jwt_secret is None:
        # the entrypoints fill it (deploy.secrets.with_jwt_secret) before building the API
        raise RuntimeError("no JWT secret in the settings")
    return settings.jwt_secret.get_secret_value()


def issue_token(settings: Settings, principal: Principal) -> str:
    """A token for ``principal`` valid for ``settings.jwt_ttl_s`` seconds."""
    now = int(time.time())
    claims = {
        "sub": principal.user_id,
        "role": principal.role,
        "iat": now,
        "exp": now + settings.jwt_ttl_s,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, _key(settings), algorithm=ALGORITHM)


def read_token(settings: Settings, token: str) -> str:
    """The user id (``sub``) of a valid token. Raises InvalidToken."""
    try:
        claims = jwt.decode(
            token,
            _key(settings),
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    return str(claims["sub"])


# ----------------------------------------------------------------- current standing


@dataclass(frozen=True, slots=True)
class Account:
    """A user's role (``UserRole`` value) and status (``UserStatus`` value) as the
    ``users`` read model shows them."""

    role: str
    status: str

    @property
    def active(self) -> bool:
        return self.status == "active"


class Accounts:
    """Token holders' current role and status, from the ``users`` read model.

    ``get`` answers from an in-process ``TTLCache`` of ``ttl_s`` seconds (default
    ``Settings.principal_cache_ttl_s`` = 2 s; unknown ids are cached too), so a busy
    client costs one ClickHouse query per ``ttl_s``; 0 reads every time. The read model
    follows the write side within the projection batch time (0.5 s by default): a
    demotion, deactivation or deletion takes effect within about ``ttl_s`` + that. A
    grant takes effect as soon as the read model shows it, on every API process: the
    callers in ``api.deps`` re-read with ``fresh=True`` before they refuse (a process that
    cached the old role would otherwise refuse the new admin for up to ``ttl_s``).
    One instance per API process (``api.deps``); the event loop is its only user, so the
    cache needs no lock.
    """

    def __init__(
        self,
        clickhouse: ClickHouse,
        *,
        ttl_s: float,
        size: int = 10_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clickhouse = clickhouse
        self._cache: ReadThrough[str, Account] = ReadThrough(
            self._load, ttl_s=ttl_s, maxsize=size, timer=timer
        )

    async def get(self, user_id: str, *, fresh: bool = False) -> Account | None:
        """The user's account, None if the read model has no such user; ``fresh`` skips
        the cache (and refills it). ClickHouse errors propagate (the API answers 503)."""
        return await self._cache.get(user_id, fresh=fresh)

    async def _load(self, user_id: str) -> Account | None:
        row = await users.account(self._clickhouse, user_id)
        return None if row is None else Account(role=str(row["role"]), status=str(row["status"]))


# ----------------------------------------------------------------- login


@functools.cache
def dummy_password_hash() -> HashedPassword:
    """The hash a login checks when the account does not exist (or its stored hash is
    unusable): made once per process by the same hasher as every user's hash (argon2id,
    19 MiB, t=2, p=1: ``pipeline/domain/values.py``) from a random password nobody knows.
    Verifying against it costs what a wrong password for a real account costs, so the
    answer's timing does not tell who has an account."""
    return hash_password(secrets.token_urlsafe(32))


def _bucket(kind: str, value: str) -> str:
    # Hashed: bucket names are Redis keys, and a login name is often an email address.
    return f"login:{kind}:{_hashed(value)}"


class LoginThrottle:
    """Failed-login limits for ``POST /api/auth/token``, shared by every API instance.

    Two token buckets per try, taken before the password is checked: the client
    address's (``login_tries_per_address`` per ``login_window_s``, default 30 a minute)
    and the account's, keyed by the login name as the login query sees it (trimmed and
    lowercased; default 10 a minute). A bucket holds that many tries and refills evenly
    (one every 6 s for an account by default). A successful login gives its tokens back:
    the buckets count failures, so people behind one address (a school's NAT) are not
    locked out by each other's logins. Known limits: a caller who owns an account can
    refill its address's bucket by logging in between guesses (the per-account limit
    still holds for every account it guesses at), and anyone can keep an account's bucket
    empty, delaying that account's owner (the price of a per-account limit; OWASP).
    """

    def __init__(self, redis: Redis, settings: Settings) -> None:
        window = settings.login_window_s
        self._accounts = TokenBuckets(
            redis,
            rate_per_s=settings.login_tries_per_account / window,
            burst=settings.login_tries_per_account,
        )
        self._addresses = TokenBuckets(
            redis,
            rate_per_s=settings.login_tries_per_address / window,
            burst=settings.login_tries_per_address,
        )

    async def take(self, login: str, address: str) -> float:
        """Take one try for ``login`` from ``address``: 0.0 when allowed, else the
        seconds until a try is possible (nothing taken then)."""
        by_address = await self._addresses.take(_bucket("address", address))
        if not by_address.allowed:
            return max(by_address.retry_after_s, 1e-3)
        by_account = await self._accounts.take(_bucket("account", login))
        if not by_account.allowed:
            # this try does not happen: the address keeps its token
            await self._addresses.give_back(_bucket("address", address))
            return max(by_account.retry_after_s, 1e-3)
        return 0.0

    async def succeeded(self, login: str, address: str) -> None:
        """Give back the try a successful login took."""
        await self._addresses.give_back(_bucket("address", address))
        await self._accounts.give_back(_bucket("account", login))


class RegistrationThrottle:
    """Self-registrations per client address (``POST /api/users/register``), shared by
    every API instance: a token bucket of ``register_per_address`` refilling over
    ``register_window_s``, taken before the password is hashed (seed 001)."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._addresses = TokenBuckets(
            redis,
            rate_per_s=settings.register_per_address / settings.register_window_s,
            burst=settings.register_per_address,
        )

    async def take(self, address: str) -> float:
        """0.0 when ``address`` may register now, else the seconds until it may."""
        decision = await self._addresses.take(f"register:{_hashed(address)}")
        return 0.0 if decision.allowed else max(decision.retry_after_s, 1e-3)


def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]
