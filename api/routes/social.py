"""The social app (seed 001): self-registration, chirps, follows, feeds and live feeds.

Users act with their own token. Commands go to Kafka like every other command
(``api/replies.py``: 201/200, 4xx problems, 202 + Location when the result is late); an
accepted command is answered once the timeline read model has applied it, so the next
request (a feed read, a follow's backfill) sees it. Reads come from the timeline read
model in Redis (``pipeline/projections/timelines.py``).

That the followee (a chirp's author) exists and is active is decided on the write side,
race-free: the user admits the follow (the chirp) in its own command order
(``pipeline/domain/admission.py``). The routes check the users read model first only to
answer an unknown or deactivated followee at once (404 ``unknown-user``, 409
``user-inactive``); the pair rule (no double follow) is the follow aggregate's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ConfigDict

from api.deps import (
    IdempotencyKey,
    PrincipalDep,
    RegistrationThrottleDep,
    Services,
    ServicesDep,
    accounts,
    per_app,
)
from api.live import ChirpFeeds, entry_key
from api.models.common import CommandOutcome
from api.models.social import ChirpText
from api.models.users import Registration
from api.problems import Problem
from api.replies import ReadModelVersion, command_fields, run_command
from api.security import Principal
from pipeline.domain import chirps, follows
from pipeline.domain.users.commands import CreateUser
from pipeline.domain.values import UserRole, canonical_uuid, hash_password
from pipeline.projections import timelines, users
from pipeline.write.routing import command_id_for, new_aggregate_id

router = APIRouter(tags=["social"])

_STRICT = ConfigDict(extra="forbid")
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued; the result will be at the Location URL."},
    403: {"description": "Not yours to change or read (problem+json)."},
    404: {"description": "No such user or chirp (problem+json)."},
    409: {"description": "Duplicate, already (not) following, deleted (problem+json)."},
    422: {"description": "Invalid input (problem+json)."},
}
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
]


def _scripts(request: Request, services: Services) -> timelines.Scripts:
    return per_app(request, "timeline_scripts", lambda: timelines.Scripts.on(services.redis))


def _live(request: Request, services: Services) -> ChirpFeeds:
    return per_app(request, "live_feeds", lambda: ChirpFeeds(services.redis))


def _user_id(raw: str) -> str:
    try:
        return canonical_uuid("user_id", raw)
    except ValueError as exc:
        raise Problem(404, "unknown-user", f"no user {raw!r}") from exc


def _own(principal: Principal, user_id: str) -> None:
    if principal.user_id != user_id and principal.role != "admin":
        raise Problem(403, "forbidden", "only the user (or an admin) may read this")


def _version_of(services: Services, key: str, field: str | None = None) -> ReadModelVersion:
    async def read(_aggregate_id: str) -> int:
        raw = await (services.redis.hget(key, field) if field else services.redis.hget(key, "v"))
        return int(raw or 0)

    return read


@router.post("/api/users/register", status_code=201, response_model=CommandOutcome,
             responses=_RESPONSES)  # fmt: skip
async def register(
    body: Registration,
    request: Request,
    services: ServicesDep,
    throttle: RegistrationThrottleDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Self-registration as a student. 201 with the new user's id once a token can be
    issued for it; 409 duplicate email or username; 422 invalid; 429 (``Retry-After``:
    whole seconds) past ``STREAMFOLD_REGISTER_PER_ADDRESS`` per client address per
    ``STREAMFOLD_REGISTER_WINDOW_S``, before any hashing."""
    wait_s = await throttle.take(request.client.host if request.client else "unknown")
    if wait_s > 0:
        raise Problem(
            429, "too-many-registrations",
            "too many registrations from this address; retry later",
            headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
        )  # fmt: skip
    hashed = await asyncio.to_thread(hash_password, body.password.get_secret_value())
    command_id = command_id_for(key, caller="register")
    user_id = new_aggregate_id(command_id)
    first, _, last = body.display_name.strip().partition(" ")
    fields = command_fields(None, user_id, user_id)
    fields["command_id"] = command_id
    command = CreateUser(
        **fields,
        username=body.username,
        email=body.email,
        first_name=first,
        last_name=last.strip() or first,
        phone=None,
        role=UserRole.STUDENT.value,
        password_hash=hashed.value,
    )
    login_ready = partial(users.version, services.clickhouse)
    return await run_command(
        services, command, success_status=201, read_model=login_ready, location="/api/users/{id}"
    )


@router.post("/api/chirps", status_code=201, response_model=CommandOutcome, responses=_RESPONSES)
async def post_chirp(
    body: ChirpText, services: ServicesDep, me: PrincipalDep, key: IdempotencyKey = None
) -> JSONResponse:
    """PostChirp as the token holder. 201 with the chirp id, once it is in the followers'
    timelines; 422 for empty or over-long text."""
    command = chirps.PostChirp(
        **command_fields(key, "", me.user_id), author_id=me.user_id, text=body.text
    )
    read = _version_of(services, f"tl:chirp:{command.aggregate_id}")
    return await run_command(
        services, command, success_status=201, read_model=read, location="/api/chirps/{id}"
    )


@router.delete("/api/chirps/{chirp_id}", response_model=CommandOutcome, responses=_RESPONSES)
async def delete_chirp(
    chirp_id: str, services: ServicesDep, me: PrincipalDep, key: IdempotencyKey = None
) -> JSONResponse:
    """DeleteChirp: the author only (403 otherwise); 404 unknown; 409 already deleted."""
    try:
        chirp_id = canonical_uuid("chirp_id", chirp_id)
    except ValueError as exc:
        raise Problem(404, "not-found", f"no chirp {chirp_id!r}") from exc
    command = chirps.DeleteChirp(**command_fields(key, chirp_id, me.user_id))
    return await run_command(
        services, command, read_model=_version_of(services, f"tl:chirp:{chirp_id}")
    )


async def _follow_command(
    request: Request, services: Services, me: Principal, user_id: str, key: str | None, kind: Any
) -> JSONResponse:
    followee = _user_id(user_id)
    if kind is follows.FollowUser:
        known = accounts(request, services)
        account = await known.get(followee)
        if account is None or not account.active:  # a refusal is never from the cache
            account = await known.get(followee, fresh=True)
        if account is None:
            raise Problem(404, "unknown-user", f"no user {followee}")
        if not account.active:
            raise Problem(409, "user-inactive", "this user is not active")
    pair = follows.follow_id(me.user_id, followee)
    command = kind(
        **command_fields(key, pair, me.user_id), follower_id=me.user_id, followee_id=followee
    )
    read = _version_of(services, f"tl:fv:{me.user_id}", followee)
    if kind is follows.FollowUser:
        return await run_command(
            services, command, success_status=201, read_model=read,
            location=f"/api/users/{me.user_id}/following",
        )  # fmt: skip
    return await run_command(services, command, read_model=read)


@router.post("/api/users/{user_id}/follow", status_code=201, response_model=CommandOutcome,
             responses=_RESPONSES)  # fmt: skip
async def follow(
    user_id: str,
    request: Request,
    services: ServicesDep,
    me: PrincipalDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """FollowUser: the token holder follows ``user_id``. 201 once the followee's recent
    chirps are in the follower's timeline; 409 already following; 422 self-follow; 404
    unknown user; 409 ``user-inactive``."""
    return await _follow_command(request, services, me, user_id, key, follows.FollowUser)


@router.delete("/api/users/{user_id}/follow", response_model=CommandOutcome,
               responses=_RESPONSES)  # fmt: skip
async def unfollow(
    user_id: str,
    request: Request,
    services: ServicesDep,
    me: PrincipalDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UnfollowUser. 200; 404 ``not-found`` when not following."""
    return await _follow_command(request, services, me, user_id, key, follows.UnfollowUser)


def _page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


def _bad_cursor(exc: ValueError) -> Problem:
    return Problem(422, "validation", f"cursor: not one this API issued ({exc})")


@router.get("/api/users/{user_id}/feed")
async def feed(
    user_id: str,
    request: Request,
    services: ServicesDep,
    me: PrincipalDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The home feed: followed users' chirps (fanned out, and pulled for celebrities),
    newest first, deleted ones excluded. ``{"items": [...], "next_cursor"}``; items
    ``{id, author: {id, username, display_name}, text, at_ms}`` (ms since the Unix
    epoch). The user's own token (or an admin's)."""
    user_id = _user_id(user_id)
    _own(me, user_id)
    try:
        items, next_cursor = await timelines.feed(
            _scripts(request, services), user_id, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise _bad_cursor(exc) from exc
    return _page([i.to_dict() for i in items], next_cursor)


async def _stream_from(
    user_id: str,
    me: PrincipalDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> tuple[str, str | None]:
    # A dependency, not the route body: the body of a streaming route runs once the
    # 200 is sent, too late for a 4xx.
    user_id = _user_id(user_id)
    _own(me, user_id)
    if last_event_id:
        try:
            entry_key(last_event_id)
        except ValueError as exc:
            raise Problem(422, "validation", "Last-Event-ID: not an id this API sent") from exc
    return user_id, last_event_id


@router.get("/api/users/{user_id}/feed/stream", response_class=EventSourceResponse)
async def feed_stream(
    request: Request,
    services: ServicesDep,
    subject: Annotated[tuple[str, str | None], Depends(_stream_from)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: first ``ready`` (subscribed; its id is where the stream
    stands), then each new chirp of a followed user as it is projected (event ``chirp``,
    data as a feed item, id a stream position). Send ``Last-Event-ID`` to resume after
    a disconnect; a comment every 15 s keeps the connection alive. Chirps projected
    while a timeline version is rebuilt are not re-sent. The user's own token."""
    user_id, last_event_id = subject
    async for item in _live(request, services).stream(user_id, last_event_id):
        if item.payload is None:
            yield ServerSentEvent(event="ready", id=item.entry_id, data={})
        else:
            yield ServerSentEvent(event="chirp", id=item.entry_id, data=item.payload)


@router.get("/api/users/{user_id}")
async def user_profile(user_id: str, services: ServicesDep, _me: PrincipalDep) -> dict[str, str]:
    """``{"id", "username", "display_name"}`` of a user the timelines read model knows
    (where a registration's ``Location`` points); 404 otherwise."""
    [profile] = await timelines.profiles(services.redis, [_user_id(user_id)])
    if not profile["username"]:
        raise Problem(404, "not-found", f"no user {user_id}")
    return profile


@router.get("/api/users/{user_id}/chirps")
async def user_chirps(
    user_id: str, services: ServicesDep, _me: PrincipalDep, limit: Limit = 20, cursor: Cursor = None
) -> dict[str, Any]:
    """A user's chirps, newest first (items as in the feed)."""
    try:
        items, next_cursor = await timelines.own_chirps(
            services.redis, _user_id(user_id), limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise _bad_cursor(exc) from exc
    return _page([i.to_dict() for i in items], next_cursor)


def _relations_route(which: str, summary: str) -> None:
    """``GET /api/users/{user_id}/<which>``: one of a user's two relation lists (the
    followers of ``user_id``, or the users it follows), paged by id."""

    async def route(
        user_id: str, services: ServicesDep, _me: PrincipalDep, limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:  # fmt: skip
        count, ids, next_cursor = await timelines.relations(
            services.redis, _user_id(user_id), which, limit=limit, cursor=cursor
        )
        return {"count": count, **_page(await timelines.profiles(services.redis, ids), next_cursor)}

    router.add_api_route(
        f"/api/users/{{user_id}}/{which}", route, methods=["GET"], name=which, description=summary
    )


_relations_route(
    "followers", '``{"count", "items": [{id, username, display_name}], "next_cursor"}``, by id.'
)
_relations_route("following", "The users ``user_id`` follows; shaped like ``/followers``.")


@router.get("/api/chirps/{chirp_id}")
async def get_chirp(chirp_id: str, services: ServicesDep, _me: PrincipalDep) -> dict[str, Any]:
    """One chirp (a feed item); 404 unknown or deleted."""
    try:
        chirp_id = canonical_uuid("chirp_id", chirp_id)
    except ValueError as exc:
        raise Problem(404, "not-found", f"no chirp {chirp_id!r}") from exc
    item = (await timelines.hydrate(services.redis, [chirp_id]))[0]
    if item is None:
        raise Problem(404, "not-found", f"no chirp {chirp_id}")
    return item.to_dict()
