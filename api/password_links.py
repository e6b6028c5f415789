"""One-time links to set a password (issue 22): how a person converted from a prospect,
whose login has no usable password (``pipeline/domain/identity/reactions.py``), signs in
for the first time.

Staff issue a link for a user id; its token (32 random bytes, URL-safe) is shown once and
kept only as its SHA-256 in Redis, for ``password_link_ttl_s``. Redeeming it swaps the
stored user id for a "used" mark in one ``SET ... GET KEEPTTL`` (atomic: of two concurrent
redemptions exactly one gets the user id), so a second use is told apart from an expired
or unknown link until the link would have expired anyway. A fast unsalted hash is enough
for a 256-bit random token (nobody can guess one to look it up), unlike a password.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from pipeline.common.problems import Problem

PREFIX = "streamfold:password-link:"
USED = b"used"


@dataclass(frozen=True, slots=True)
class PasswordLink:
    """``token``: what the person presents (shown once); ``expires_at``: Unix time, s."""

    token: str
    expires_at: float


def _key(token: str) -> str:
    return PREFIX + hashlib.sha256(token.encode()).hexdigest()


async def issue(redis: Redis, user_id: str, ttl_s: int) -> PasswordLink:
    """A new link for ``user_id`` valid ``ttl_s`` seconds (earlier links stay valid)."""
    token = secrets.token_urlsafe(32)
    await redis.set(_key(token), user_id, ex=ttl_s)
    return PasswordLink(token=token, expires_at=time.time() + ttl_s)


async def redeem(redis: Redis, token: str) -> str:
    """The user id of the link ``token``, which is then used up.

    Raises:
        Problem: 410 ``link-expired`` for an expired or unknown token; 409 ``link-used``
            for a token redeemed before.
    """
    previous = await redis.set(_key(token), USED, keepttl=True, xx=True, get=True)
    if previous is None:
        raise Problem(
            410, "link-expired", "this link has expired or does not exist: ask for a new one"
        )
    if previous in (USED, USED.decode()):
        raise Problem(409, "link-used", "this link was used already: ask for a new one")
    return previous.decode() if isinstance(previous, bytes) else str(previous)
