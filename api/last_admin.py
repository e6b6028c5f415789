"""The last active admin stays: no demotion, deactivation or deletion through the API may
leave the install without an active admin (issue 7). Seed 000 gives admins alone the
user-management routes; with none, nobody could manage users or restore an admin, and
``PUT /api/admin/users/{id}`` with ``"role": "student"`` on the only admin did exactly
that. An operator's way back is ``streamfold create-admin`` (``deploy/cli.py``).

How a command that may take admin rights from its target (UpdateUser to another role,
DeactivateUser, DeleteUser) runs, in :func:`run_removal`:

1. Is the target an admin? The ``users`` read model says it is an active admin (read
   through :class:`AdminRoster`: the set of active admins, at most
   ``principal_cache_ttl_s`` old), or a grant mark (below) says it may have become one
   in the last ``GRANT_MARK_S``. If not, the command runs as any other: it takes admin
   rights from nobody.
2. Otherwise take ``LOCK`` (one Redis lock per install, shared by every API instance;
   wait up to the command timeout, else 503 with ``Retry-After``).
3. Under the lock, count the *other* active admins in the read model; none: 409
   ``/problems/last-admin``, nothing is sent.
4. Submit the command; once accepted, wait until the read model has applied it
   (``api.replies.until_applied``), then release the lock. So the next holder counts
   with this change visible: two admins demoting each other at once are serialised, the
   second finds no other admin and gets the 409.

Grant marks: a command that may make its target an active admin (CreateUser or
UpdateUser with the admin role, ReactivateUser; ``streamfold create-admin``'s
ReactivateUser and GrantAdmin) sets ``GRANT_MARK`` for the target before it is sent.
Without them, an admin promoted less than the projection lag (plus the roster's age) ago
would look like a student to step 1 and be demoted without the lock, while a concurrent
locked demotion counted it as the remaining admin. Because a mark lasts ``GRANT_MARK_S``
(300 s) and the roster is at most a few seconds old, reading the roster from a cache
is as safe as reading the read model per request: whoever is an admin now was one when
the roster was read, or was granted it since and is marked. The roster made step 1 one
query per API process every ``principal_cache_ttl_s`` instead of one ``users FINAL``
query per request (17 ms p50 under load, the largest part of an UpdateUser's time in
the API, measured in issue 8).

Race-free on the write side (issue 22): whatever the API decides, a command that would
take an active admin's rights is approved by the admin roster first, one partition that
counts the seated admins (``pipeline/domain/users/roster.py``), and refused there with the
same ``last_admin`` reason when no other admin would be left. That covers commands
produced straight to ``users.commands`` and a lock that expired before a slow result.
What this module adds is a prompt answer before anything is sent, not the guarantee.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any

import structlog
from cachetools import TTLCache
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import LockError

from api import replies
from api.deps import Services, ServicesDep, per_app
from api.problems import Problem
from pipeline.projections import users

log = structlog.get_logger(__name__)

LOCK = "streamfold:lock:admin-roster"
"""The Redis lock that serialises changes that may remove an active admin."""
GRANT_MARK = "streamfold:admin-grant:{user_id}"
GRANT_MARK_S = 300
"""How long, s, a grant mark makes its user count as a possible admin (>> the
projection lag, 0.5 s by default)."""


def lock_ttl_s(services: Services) -> float:
    """How long the lock lives at most: the wait for the result plus the wait for the
    read model (each up to the command timeout), plus as much again for the queries."""
    return 3 * services.settings.command_timeout_s


async def mark_grant(redis: Redis, user_id: str) -> None:
    """Note that ``user_id`` may become an active admin (call before sending)."""
    await redis.set(GRANT_MARK.format(user_id=user_id), "1", ex=GRANT_MARK_S)


_ROSTER = "active-admins"


class AdminRoster:
    """The ids of the active admins in the ``users`` read model, read at most once per
    ``ttl_s`` seconds (0: on every call), in a ``TTLCache`` as ``api.security.Accounts``
    keeps accounts. One per API process; concurrent callers of an expired roster share
    one query. ClickHouse errors propagate (the API answers 503)."""

    def __init__(
        self, services: Services, *, ttl_s: float, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._services = services
        self._cache: TTLCache[str, frozenset[str]] | None = (
            TTLCache(maxsize=1, ttl=ttl_s, timer=timer) if ttl_s > 0 else None
        )
        self._reading = asyncio.Lock()

    async def active_admins(self) -> frozenset[str]:
        cached = self._cached()
        if cached is not None:
            return cached
        async with self._reading:
            cached = self._cached()  # another caller may have read it while this one waited
            if cached is None:
                cached = await users.active_admins(self._services.clickhouse)
                if self._cache is not None:
                    self._cache[_ROSTER] = cached
            return cached

    def _cached(self) -> frozenset[str] | None:
        return None if self._cache is None else self._cache.get(_ROSTER)

    async def may_be_admin(self, user_id: str) -> bool:
        """Step 1 of the module docstring: an active admin in the roster, or marked."""
        if user_id in await self.active_admins():
            return True
        return bool(await self._services.redis.exists(GRANT_MARK.format(user_id=user_id)))


async def _admin_roster(request: Request, services: ServicesDep) -> AdminRoster:
    return per_app(
        request,
        "admin_roster",
        lambda: AdminRoster(services, ttl_s=services.settings.principal_cache_ttl_s),
    )


AdminRosterDep = Annotated[AdminRoster, Depends(_admin_roster)]


async def run_removal(services: Services, roster: AdminRoster, command: Any) -> JSONResponse:
    """``api.replies.run_command`` for a command that may take admin rights from its
    target, with the last-admin check of the module docstring.

    Answers as ``run_command`` (200, 202, 404/409/422 rejections, 503 Kafka), and also:
    409 ``/problems/last-admin`` (``reason`` ``last_admin``) when the target is the only
    active admin; 503 ``/problems/admin-change-busy`` with ``Retry-After`` when another
    such change held the lock for the whole command timeout.
    """
    target = command.aggregate_id
    if not await roster.may_be_admin(target):
        return await replies.run_command(services, command)
    lock = services.redis.lock(LOCK, timeout=lock_ttl_s(services))
    if not await lock.acquire(blocking_timeout=services.settings.command_timeout_s):
        raise Problem.retry_later(
            "admin-change-busy", "another change to an admin is in progress; retry shortly"
        )
    release = True
    try:
        if await users.other_active_admins(services.clickhouse, target) == 0:
            raise Problem(
                409,
                "last-admin",
                f"user {target} is the last active admin: it cannot be demoted, deactivated "
                "or deleted; make another user an active admin first",
                reason="last_admin",
                id=target,
            )
        result = await replies.submit(services, command)
        if result is None:
            release = False  # outcome unknown: hold the lock until it expires
            return replies.pending(command)
        replies.raise_rejection(result)
        release = await replies.until_applied(
            services, result, lambda user_id: users.version(services.clickhouse, user_id)
        )
        return JSONResponse(replies.outcome_body(result), status_code=200)
    finally:
        if release:
            try:
                await lock.release()
            except LockError:  # expired meanwhile: the next holder may already have it
                log.warning("admin-roster lock expired before release", user_id=target)
