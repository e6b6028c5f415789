"""The timeline read model in Redis (seed 001): followers and following, each chirp once,
each user's own chirps, and home timelines filled by fan-out on write, except for
celebrities, whose chirps readers pull (the feed read merges both).

The writes are Redis Lua scripts (``timeline_scripts.lua`` says why), one per event,
each atomic and version-skipping, sent a few at a time before the runner writes its
checkpoint (``WRITE_CHUNK``); this module turns envelopes into script calls and reads
the feed back. Rules (sources: seed 001 and issue 10):

- ChirpPosted by a regular author: its id goes to every follower's home timeline (sorted
  by time, capped at ``TimelinePolicy.cap``); by a celebrity, only to the author's own set.
- An author becomes a celebrity at ``celebrity_followers`` followers and stops being one
  below ``demote_below`` (hysteresis: an author near the line does not flap); on the way
  down their newest chirps are backfilled into every follower's timeline.
- UserFollowed: the followee's newest ``backfill`` chirps into the follower's timeline,
  unless a celebrity. UserUnfollowed: the followee's chirps out of it.
- ChirpDeleted: gone from every timeline, and every read skips it.

What a feed equals (the reference model, ``tests/integration/test_timeline_model.py``): the
chirps of the users the reader follows now, not deleted, newest first (ties: higher id
first), limited to the newest ``backfill`` per author at the moment of following and the
newest ``cap`` fanned-out ones.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from pipeline.domain import chirps, follows
from pipeline.domain import users as user_events
from pipeline.domain.chirps import CHIRP_SPEC
from pipeline.domain.errors import DomainError
from pipeline.domain.follows import FOLLOW_SPEC
from pipeline.domain.timeline_policy import TimelinePolicy
from pipeline.domain.users import USER_SPEC
from pipeline.domain.values import canonical_uuid
from pipeline.projections.projection import Context, Decoded, Failed, Handler, Projection, Store

LIVE_STREAM = "timeline:live"
"""Redis stream of chirps projected by the live version (``chirp``, ``author``): what live
feeds (SSE) read. Outside the versioned keys: a rebuild never writes it."""

KEY_PATTERNS = ("tl:*",)


@functools.cache
def script_sources() -> dict[str, str]:
    """Section name -> Lua source, from ``timeline_scripts.lua`` ("--! name" lines)."""
    text = (Path(__file__).parent / "timeline_scripts.lua").read_text()
    sections: dict[str, str] = {}
    for chunk in text.split("\n--! ")[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body
    return sections


@dataclass(frozen=True)
class Scripts:
    """The scripts, registered on one client (redis-py loads them before a pipeline's
    EXEC and falls back from EVALSHA on a Redis that restarted)."""

    post: AsyncScript
    delete: AsyncScript
    follow: AsyncScript
    unfollow: AsyncScript
    profile: AsyncScript
    feed: AsyncScript

    @classmethod
    def on(cls, redis: Redis) -> Scripts:
        sources = script_sources()
        return cls(**{name: redis.register_script(sources[name]) for name in cls.__annotations__})


def _ms(envelope: Any) -> str:
    return str(int(envelope.occurred_at.timestamp() * 1000))


def _display(first: str, last: str) -> str:
    return first if first == last else f"{first} {last}".strip()


WRITE_CHUNK = 8
"""Events per round trip to Redis. Each script is atomic and version-skipping on its own,
so the batch is not one MULTI: Redis serves feed reads between chunks (a 500-chirp MULTI
held them for ~250 ms in bench/timelines.py). A crash between a chunk and the runner's
checkpoint replays the chunk, and the scripts skip what they applied."""


class TimelineHandler:
    """The projection's handler, bound to a policy and the scripts."""

    def __init__(self, policy: TimelinePolicy, scripts: Scripts) -> None:
        self.policy = policy
        self.scripts = scripts
        self.fanned_out = 0
        """Timeline writes made by fan-out on post so far (what bench/timelines.py rates)."""

    async def __call__(self, batch: Sequence[Decoded], ctx: Context) -> Failed:
        failed: list[tuple[Decoded, str]] = []
        for start in range(0, len(batch), WRITE_CHUNK):
            async with ctx.redis.pipeline(transaction=False) as pipe:
                kinds = []
                for decoded in batch[start : start + WRITE_CHUNK]:
                    try:
                        kinds.append(
                            await self._queue(decoded.envelope, dataclasses.replace(ctx, pipe=pipe))
                        )
                    except (DomainError, ValueError, KeyError) as exc:
                        failed.append((decoded, f"{type(exc).__name__}: {exc}"))
                results = await pipe.execute()
            kinds = [k for k in kinds if k]
            self.fanned_out += sum(
                r for k, r in zip(kinds, results, strict=True) if k == "post" and r > 0
            )
        return failed

    async def _queue(self, envelope: Any, ctx: Context) -> str | None:
        """Queue the script for ``envelope``; its name ("post", ...), None if none."""
        # redis-py's AsyncScript.__call__ is a coroutine even when it only queues into a
        # pipeline (it registers the script for the pipeline to load before EXEC)
        p, s, policy, pipe = ctx.key_prefix, self.scripts, self.policy, ctx.pipe
        kind, v = envelope.aggregate_type, str(envelope.aggregate_version)
        if kind == chirps.AGGREGATE_TYPE:
            event = chirps.from_data(envelope.event_type, envelope.data)
            canonical_uuid("chirp_id", event.chirp_id)
            canonical_uuid("author_id", event.author_id)
            if isinstance(event, chirps.ChirpPosted):
                live = "0" if ctx.replaying else "1"
                args = [p, event.chirp_id, event.author_id, event.text, _ms(envelope), v,
                        policy.cap, live, policy.live_stream_max, LIVE_STREAM]  # fmt: skip
                await s.post(args=args, client=pipe)
                return "post"
            await s.delete(args=[p, event.chirp_id, event.author_id, v], client=pipe)
            return "delete"
        if kind == follows.AGGREGATE_TYPE:
            event = follows.from_data(envelope.event_type, envelope.data)
            follower = canonical_uuid("follower_id", event.follower_id)
            followee = canonical_uuid("followee_id", event.followee_id)
            if isinstance(event, follows.UserFollowed):
                line = policy.celebrity_followers
                script = s.follow
            else:
                line = policy.demote_below
                script = s.unfollow
            await script(
                args=[p, follower, followee, v, policy.backfill, policy.cap, line], client=pipe
            )
            return "follow"
        if kind == "user":
            return await self._profile(envelope, ctx)
        return None

    async def _profile(self, envelope: Any, ctx: Context) -> str | None:
        if envelope.event_type not in ("UserCreated", "UserUpdated"):
            return None
        event = user_events.from_data(envelope.event_type, envelope.data)
        username = getattr(event, "username", "")
        display = _display(event.first_name, event.last_name)
        args = [ctx.key_prefix, envelope.aggregate_id, str(envelope.aggregate_version),
                username, display]  # fmt: skip
        await self.scripts.profile(args=args, client=ctx.pipe)
        return "profile"


def bind(deps: Any) -> Handler:
    """The handler for one instance of the runner (``Deps.timelines`` is the policy)."""
    return TimelineHandler(deps.timelines, Scripts.on(deps.redis))


PROJECTION = Projection(
    name="timelines",
    topics=(CHIRP_SPEC.events_topic, FOLLOW_SPEC.events_topic, USER_SPEC.events_topic),
    store=Store.REDIS,
    handle=None,
    bind=bind,
    keys=KEY_PATTERNS,
    description="home timelines (fan-out on write, celebrities pulled), followers, chirps",
)


# -- reads (the API) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One chirp as a feed shows it; ``at_ms``: posted at, ms since the Unix epoch (UTC)."""

    chirp_id: str
    author_id: str
    username: str
    display_name: str
    text: str
    at_ms: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.chirp_id,
            "author": {
                "id": self.author_id,
                "username": self.username,
                "display_name": self.display_name,
            },
            "text": self.text,
            "at_ms": self.at_ms,
        }


def encode_cursor(at_ms: int, chirp_id: str) -> str:
    return f"{at_ms}:{chirp_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ValueError for a cursor this module did not make."""
    at, _, chirp_id = cursor.partition(":")
    return int(at), canonical_uuid("cursor", chirp_id)


async def feed(
    scripts: Scripts, user_id: str, *, limit: int, cursor: str | None, prefix: str = ""
) -> tuple[list[FeedItem], str | None]:
    """(items, next cursor or None): one round trip (the ``feed`` script).

    Raises ValueError for a malformed cursor.
    """
    at, after = decode_cursor(cursor) if cursor else ("", "")
    raw = await scripts.feed(args=[prefix, user_id, limit, at, after])
    values = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
    items = [
        FeedItem(*values[i : i + 5], at_ms=int(float(values[i + 5])))
        for i in range(2, len(values), 6)
    ]
    next_cursor = encode_cursor(int(float(values[0])), values[1]) if values[0] else None
    return items, next_cursor


async def hydrate(redis: Redis, chirp_ids: Sequence[str]) -> list[FeedItem | None]:
    """The live chirps ``chirp_ids`` as feed items (None: unknown or deleted), in two
    pipelined round trips (chirps, then their authors' profiles)."""
    async with redis.pipeline(transaction=False) as pipe:
        for chirp_id in chirp_ids:
            pipe.hmget(f"tl:chirp:{chirp_id}", "a", "t", "s", "d")
        rows = await pipe.execute()
    authors = sorted({row[0] for row in rows if row[0] is not None})
    async with redis.pipeline(transaction=False) as pipe:
        for author in authors:
            pipe.hmget(f"tl:profile:{author.decode()}", "n", "d")
        profiles = dict(zip(authors, await pipe.execute(), strict=True))
    items: list[FeedItem | None] = []
    for chirp_id, (author, text, at, deleted) in zip(chirp_ids, rows, strict=True):
        if author is None or deleted:
            items.append(None)
            continue
        username, display = profiles[author]
        items.append(
            FeedItem(
                chirp_id,
                author.decode(),
                (username or b"").decode(),
                (display or b"").decode(),
                (text or b"").decode(),
                int(at),
            )
        )
    return items


async def own_chirps(
    redis: Redis, user_id: str, *, limit: int, cursor: str | None
) -> tuple[list[FeedItem], str | None]:
    """A user's chirps, newest first, cursor-paginated like the feed. Raises ValueError
    for a malformed cursor."""
    key = f"tl:own:{user_id}"
    if cursor:
        at, after = decode_cursor(cursor)
        ties = [i.decode() for i in await redis.zrange(key, at, at, byscore=True, desc=True)]
        ids = [i for i in ties if i < after]
        rest = await redis.zrange(key, f"({at}", "-inf", byscore=True, desc=True,
                                  offset=0, num=limit)  # fmt: skip
        ids += [i.decode() for i in rest]
    else:
        raw = await redis.zrange(key, "+inf", "-inf", byscore=True, desc=True, offset=0, num=limit)
        ids = [i.decode() for i in raw]
    items = [i for i in await hydrate(redis, ids[:limit]) if i is not None]
    more = len(ids) >= limit and items
    return items, encode_cursor(items[-1].at_ms, items[-1].chirp_id) if more else None


async def relations(
    redis: Redis, user_id: str, which: str, *, limit: int, cursor: str | None
) -> tuple[int, list[str], str | None]:
    """(count, user ids in id order after ``cursor``, next cursor) of ``which``
    ("followers" or "following")."""
    members = sorted(m.decode() for m in await redis.smembers(f"tl:{which}:{user_id}"))
    start = 0
    if cursor:
        start = next((i for i, m in enumerate(members) if m > cursor), len(members))
    page = members[start : start + limit]
    more = start + limit < len(members)
    return len(members), page, page[-1] if more and page else None


async def profiles(redis: Redis, user_ids: Sequence[str]) -> list[dict[str, str]]:
    """``{"id", "username", "display_name"}`` for each user (blank when not projected)."""
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.hmget(f"tl:profile:{user_id}", "n", "d")
        rows = await pipe.execute()
    return [
        {"id": u, "username": (n or b"").decode(), "display_name": (d or b"").decode()}
        for u, (n, d) in zip(user_ids, rows, strict=True)
    ]
