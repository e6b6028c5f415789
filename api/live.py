"""Live feeds: chirps pushed to the followers who have a feed stream open (SSE).

One reader per API process follows the live stream (``timeline:live``, written by the
timeline projection in the MULTI that fans the chirp out, so a pushed chirp is already in
the feed a reload shows) and hands each entry to the subscribers who follow its author:
one ``SMISMEMBER`` per entry, not one query per subscriber. A reconnecting client sends
``Last-Event-ID`` (a stream entry id) and first gets what it missed from the stream
(``XRANGE``; the stream keeps ``TimelinePolicy.live_stream_max`` entries), then the live
entries, without a gap or a repeat: it subscribes before it reads back.

A subscriber that does not keep up (its queue of ``QUEUE_MAX`` items full) is dropped:
its stream ends and the client resumes from its last id, so a slow client never grows
this process's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis

from pipeline.projections import timelines
from pipeline.projections.timelines import LIVE_STREAM

log = structlog.get_logger(__name__)

QUEUE_MAX = 256
_BLOCK_MS = 1000
"""Below the client's socket timeout (``connectors.redis.REDIS_TIMEOUT_S``): a longer block
on an idle stream ended in a read timeout, and a second's pause, every time."""
_CATCH_UP_MAX = 10_000


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``"<ms>-<seq>"`` as a sortable pair. Raises ValueError."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One pushed chirp: ``entry_id`` is the SSE id; ``chirp`` the feed item's dict, or
    None for the first item of a stream: "subscribed; caught up to ``entry_id``"."""

    entry_id: str
    chirp: dict[str, Any] | None


@dataclass(eq=False)
class Subscriber:
    user_id: str
    queue: asyncio.Queue[LiveItem | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX)
    )
    dropped: bool = False


class LiveFeeds:
    """The per-process reader and its subscribers."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.subscribers: set[Subscriber] = set()
        self._reader: asyncio.Task[None] | None = None

    async def stream(self, user_id: str, last_event_id: str | None) -> AsyncIterator[LiveItem]:
        """The chirps to push to ``user_id``: a ready marker once subscribed, then the
        ones after ``last_event_id``, then live ones.

        Ends when the subscriber falls ``QUEUE_MAX`` items behind (the client resumes).
        Raises ValueError for a malformed ``last_event_id``.
        """
        after = entry_key(last_event_id) if last_event_id else None
        subscriber = Subscriber(user_id)
        self.subscribers.add(subscriber)
        self._ensure_reader()
        try:
            sent = after
            newest = await self.redis.xrevrange(LIVE_STREAM, count=1)
            yield LiveItem(newest[0][0].decode() if newest else "0-0", None)
            if last_event_id:
                async for item in self._catch_up(user_id, last_event_id):
                    sent = entry_key(item.entry_id)
                    yield item
            while True:
                item = await subscriber.queue.get()
                if item is None:
                    return
                if sent is not None and entry_key(item.entry_id) <= sent:
                    continue  # read back already
                yield item
        finally:
            self.subscribers.discard(subscriber)

    async def _catch_up(self, user_id: str, last_event_id: str) -> AsyncIterator[LiveItem]:
        start = f"({last_event_id}"
        entries = await self.redis.xrange(LIVE_STREAM, min=start, max="+", count=_CATCH_UP_MAX)
        following = await self.redis.smembers(f"tl:following:{user_id}")
        for entry_id, fields in entries:
            if fields.get(b"author") in following:
                chirp = await self._hydrate(fields[b"chirp"].decode())
                if chirp is not None:
                    yield LiveItem(entry_id.decode(), chirp)

    def _ensure_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="live-feeds")

    async def _read(self) -> None:
        last = "$"
        while self.subscribers:
            try:
                answer = await self.redis.xread({LIVE_STREAM: last}, block=_BLOCK_MS, count=500)
            except Exception as exc:  # a Redis outage: subscribers wait, the reader retries
                log.warning("live feed read failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    await self._dispatch(last, fields)

    async def _dispatch(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        subscribers = list(self.subscribers)
        if not subscribers:
            return
        author = fields[b"author"].decode()
        members = await self.redis.smismember(
            f"tl:followers:{author}", [s.user_id for s in subscribers]
        )
        chosen = [s for s, follows in zip(subscribers, members, strict=True) if follows]
        if not chosen:
            return
        chirp = await self._hydrate(fields[b"chirp"].decode())
        if chirp is None:
            return
        item = LiveItem(entry_id, chirp)
        for subscriber in chosen:
            try:
                subscriber.queue.put_nowait(item)
            except asyncio.QueueFull:
                self._drop(subscriber)

    def _drop(self, subscriber: Subscriber) -> None:
        subscriber.dropped = True
        self.subscribers.discard(subscriber)
        with contextlib.suppress(asyncio.QueueEmpty):
            subscriber.queue.get_nowait()  # room for the end marker
        subscriber.queue.put_nowait(None)
        log.info("live feed subscriber dropped: too slow", user_id=subscriber.user_id)

    async def _hydrate(self, chirp_id: str) -> dict[str, Any] | None:
        item = (await timelines.hydrate(self.redis, [chirp_id]))[0]
        return None if item is None else item.to_dict()
