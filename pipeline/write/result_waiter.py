"""Waiting for command results: a ``command.results`` tail shared by all waiting requests.

Every API instance (and the CLI) reads all partitions of ``command.results`` from the
offsets current at start, without a consumer group: each instance must see every result,
because the request waiting for it may be on any instance. Results are small and kept a
week; reading all of them is cheap next to one HTTP request each.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

import structlog
from cachetools import TTLCache
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import base_config
from pipeline.domain.handling import CommandResult
from pipeline.write.codecs import MalformedMessage, decode_result

log = structlog.get_logger(__name__)


class ResultWaiter:
    """``await wait(command_id, timeout_s)`` -> the result, or None on timeout.

    Call ``expect(command_id)`` BEFORE producing the command, so a fast result cannot be
    missed; then ``wait``. A background thread polls Kafka and settles futures on the loop.
    The results of the last ``SEEN_S`` seconds are kept (at most ``SEEN_MAX``) for ids
    learned only from another result (``expect(seen=True)``).
    """

    SEEN_S = 30.0
    SEEN_MAX = 50_000

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._futures: dict[str, list[asyncio.Future[CommandResult]]] = defaultdict(list)
        self._seen: TTLCache[str, CommandResult] = TTLCache(self.SEEN_MAX, self.SEEN_S)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        consumer = await asyncio.to_thread(self._assign)
        self._thread = threading.Thread(
            target=self._run,
            args=(consumer, asyncio.get_running_loop()),
            name="result-waiter",
            daemon=True,
        )
        self._thread.start()

    def _assign(self) -> Consumer:
        consumer = Consumer(
            {
                **base_config(self._bootstrap),
                "group.id": "streamfold-result-waiter",  # required by librdkafka; never committed
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                # a long poll: the broker answers as soon as a result arrives, so a short
                # wait buys no latency; 10 ms (two API workers) kept an idle broker at
                # 11 % CPU, 500 (librdkafka's default) at 5 %, PUT p50 20 ms either way
                "fetch.wait.max.ms": 500,
            }
        )
        meta = consumer.list_topics(self._topic, timeout=10).topics[self._topic]
        # Explicit end offsets rather than OFFSET_END: OFFSET_END resolves lazily at the
        # first fetch, and a result produced before that would be skipped.
        parts = []
        for p in meta.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self._topic, p), timeout=10)
            parts.append(TopicPartition(self._topic, p, high))
        consumer.assign(parts)
        return consumer

    def _run(self, consumer: Consumer, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                if msg is None or msg.error():
                    continue
                try:
                    result = decode_result(msg.value())
                except MalformedMessage as exc:
                    log.warning("unreadable command result", offset=msg.offset(), error=str(exc))
                    continue
                loop.call_soon_threadsafe(self._settle, result)
        finally:
            consumer.close()

    def _settle(self, result: CommandResult) -> None:
        self._seen[result.command_id] = result
        for future in self._futures.pop(result.command_id, []):
            if not future.done():
                future.set_result(result)

    def expect(self, command_id: str, *, seen: bool = False) -> asyncio.Future[CommandResult]:
        """A future for ``command_id``'s result. ``seen``: a result that came in the last
        ``SEEN_S`` seconds settles it at once (for a command someone else produced, e.g. a
        process manager's, whose id was learned from a result just received); otherwise
        only a result arriving from now on does (a retried command's earlier result is
        not its answer: the retry's own result says ``duplicate``)."""
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        earlier = self._seen.get(command_id) if seen else None
        if earlier is not None:
            future.set_result(earlier)
            return future
        self._futures[command_id].append(future)
        return future

    async def wait(
        self, future: asyncio.Future[CommandResult], timeout_s: float
    ) -> CommandResult | None:
        """The result, or None after ``timeout_s``. The caller ``forget``s the future
        afterwards, whatever happened."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return None

    def forget(self, command_id: str, future: asyncio.Future[CommandResult]) -> None:
        """Drop ``future`` from the waiting map (a no-op once its result settled it)."""
        waiting = self._futures.get(command_id)
        if waiting and future in waiting:
            waiting.remove(future)
            if not waiting:
                del self._futures[command_id]

    @property
    def waiting(self) -> int:
        """How many command ids have a request waiting for their result."""
        return len(self._futures)

    async def stop(self) -> None:
        self._stop.set()
        if self._thread:
            await asyncio.to_thread(self._thread.join, 5)
