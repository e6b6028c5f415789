"""Live pushes over Server-Sent Events and WebSockets: one Redis stream, one reader per
API process, many subscribers.

:class:`LiveHub` is the mechanism, shared by every live route: the reader follows one
stream (``XREAD``) and hands each batch of entries to the subscribers who may see them
(:meth:`LiveHub.select`, the hub's own rule). A reconnecting client sends the last id it
got (``Last-Event-ID``, or ``last_id`` on a WebSocket) and first gets what it missed
from the stream (``XRANGE``; the stream keeps what its writer's MAXLEN says), then the
live entries, without a gap or a repeat: it subscribes before it reads back.

A subscriber that does not keep up (its queue of ``QUEUE_MAX`` items full) is dropped:
its stream ends (a WebSocket is closed with 1013) and the client resumes from its
last id, so a slow client never grows this process's memory.

The hubs: :class:`ChirpFeeds` (a user's live feed, ``timeline:live``) and
``api/notifications.py`` (identity read-model changes, ``identity:live``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from redis.asyncio import Redis

from connectors import metrics
from pipeline.projections import timelines
from pipeline.projections.timelines import LIVE_STREAM

log = structlog.get_logger(__name__)

QUEUE_MAX = 256
_BLOCK_MS = 1000
"""Below the client's socket timeout (``connectors.redis.REDIS_TIMEOUT_S``): a longer block
on an idle stream ended in a read timeout, and a second's pause, every time."""
_READ_COUNT = 500
_CATCH_UP_MAX = 10_000

Entry = tuple[str, dict[bytes, bytes]]
"""A stream entry: id ``"<ms>-<seq>"`` and its fields."""


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id ``"<ms>-<seq>"`` as a sortable pair. Raises ValueError."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class LiveItem:
    """One push: ``entry_id`` is the newest stream position it covers (the SSE id, what
    a client resumes after); ``payload`` what the hub made of the entries, or None for the
    first item of a stream: "subscribed; caught up to ``entry_id``"."""

    entry_id: str
    payload: Any


@dataclass(eq=False)
class Subscriber:
    """``who``: what the hub's ``select`` decides by (a user id, an audience)."""

    who: Any
    queue: asyncio.Queue[LiveItem | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX)
    )
    dropped: bool = False


class LiveHub:
    """The per-process reader of ``STREAM`` and its subscribers. Subclasses say who gets
    what (:meth:`select`)."""

    STREAM: ClassVar[str]

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.subscribers: set[Subscriber] = set()
        self._reader: asyncio.Task[None] | None = None

    async def select(
        self, entries: Sequence[Entry], subscribers: Sequence[Subscriber]
    ) -> list[tuple[Subscriber, LiveItem]]:
        """What each subscriber gets of ``entries`` (oldest first), in order."""
        raise NotImplementedError

    def after(self, item: LiveItem, sent: tuple[int, int]) -> LiveItem | None:
        """``item`` without what is at or before ``sent`` (already read back), None if
        nothing is left. One entry per item here; hubs that batch override it."""
        return item if entry_key(item.entry_id) > sent else None

    async def stream(self, who: Any, last_event_id: str | None) -> AsyncGenerator[LiveItem, None]:
        """What to push to ``who``: a ready marker once subscribed, then what came after
        ``last_event_id``, then live items.

        Ends when the subscriber falls ``QUEUE_MAX`` items behind (the client resumes).
        Raises ValueError for a malformed ``last_event_id``.
        """
        sent = entry_key(last_event_id) if last_event_id else None
        subscriber = Subscriber(who)
        self.subscribers.add(subscriber)
        connected = metrics.LIVE_SUBSCRIBERS.labels(self.STREAM)
        connected.inc()
        try:
            newest = await self.redis.xrevrange(self.STREAM, count=1)
            ready = newest[0][0].decode() if newest else "0-0"
            # A reader started now starts here: one started by the first XREAD's "$"
            # missed what came between this read and that one (found by
            # tests/integration/test_live_hub.py).
            self._ensure_reader(ready)
            sent = sent or entry_key(ready)
            yield LiveItem(ready, None)
            if last_event_id:
                async for item in self._catch_up(subscriber, last_event_id):
                    sent = entry_key(item.entry_id)
                    yield item
            while True:
                item = await subscriber.queue.get()
                if item is None:
                    return
                if sent is not None and (item := self.after(item, sent)) is None:
                    continue  # read back already
                yield item
        finally:
            self.subscribers.discard(subscriber)
            connected.dec()

    async def _catch_up(
        self, subscriber: Subscriber, last_event_id: str
    ) -> AsyncIterator[LiveItem]:
        raw = await self.redis.xrange(
            self.STREAM, min=f"({last_event_id}", max="+", count=_CATCH_UP_MAX
        )
        entries = [(entry_id.decode(), fields) for entry_id, fields in raw]
        for i in range(0, len(entries), _READ_COUNT):
            for _subscriber, item in await self.select(entries[i : i + _READ_COUNT], [subscriber]):
                yield item

    def _ensure_reader(self, after: str) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(after), name=f"live:{self.STREAM}")

    async def _read(self, last: str) -> None:
        while self.subscribers:
            try:
                answer = await self.redis.xread(
                    {self.STREAM: last}, block=_BLOCK_MS, count=_READ_COUNT
                )
            except Exception as exc:  # a Redis outage: subscribers wait, the reader retries
                log.warning("live stream read failed", stream=self.STREAM, error=str(exc))
                await asyncio.sleep(1)
                continue
            for _stream, raw in answer or ():
                entries = [(entry_id.decode(), fields) for entry_id, fields in raw]
                last = entries[-1][0]
                subscribers = list(self.subscribers)
                if subscribers:
                    await self._dispatch(await self.select(entries, subscribers))

    async def _dispatch(self, pushes: list[tuple[Subscriber, LiveItem]]) -> None:
        for subscriber, item in pushes:
            if subscriber.dropped:
                continue
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
        log.info("live subscriber dropped: too slow", stream=self.STREAM)


class ChirpFeeds(LiveHub):
    """Chirps pushed to the followers who have a feed stream open (``who``: a user id).

    The timeline projection writes ``timeline:live`` in the MULTI that fans the chirp
    out, so a pushed chirp is already in the feed a reload shows. One ``SMISMEMBER`` per
    entry (all of a batch in one pipeline), not one query per subscriber; payload: the
    feed item's dict."""

    STREAM = LIVE_STREAM

    async def select(
        self, entries: Sequence[Entry], subscribers: Sequence[Subscriber]
    ) -> list[tuple[Subscriber, LiveItem]]:
        # one round trip for the memberships of the whole batch, one for the chirps
        whos = [s.who for s in subscribers]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _entry_id, fields in entries:
                pipe.smismember(f"tl:followers:{fields[b'author'].decode()}", whos)
            memberships = await pipe.execute()
        chosen = [
            (
                entry_id,
                fields[b"chirp"].decode(),
                [s for s, f in zip(subscribers, m, strict=True) if f],
            )
            for (entry_id, fields), m in zip(entries, memberships, strict=True)
            if any(m)
        ]
        items = await timelines.hydrate(self.redis, [chirp for _, chirp, _ in chosen])
        pushes = []
        for (entry_id, _chirp, to), item in zip(chosen, items, strict=True):
            if item is not None:
                pushes += [(s, LiveItem(entry_id, item.to_dict())) for s in to]
        return pushes
