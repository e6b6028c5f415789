"""faust-streaming 0.15.3 problems worked around here, one place each.

**Commits past a message that was never acked.** ``Consumer._new_offset`` turns the
acked offsets of a partition into the next offset to commit. Before that, it means to
refuse a gap at the head ("acked starts after the committed offset"), but it tests
``min(acked) - committed > 1`` while ``committed`` is Kafka's *next* offset to read (it
is set from ``batch[-1] + 1`` and from the group's committed offsets). So with offset N
committed and N itself never acked:

- acked starting at N + 1 passes the test and commits past N: N is lost (seen after a
  SIGKILL and restart: users short of an update in the crash test);
- acked starting at N + 2 or later is refused, now and forever: the partition never
  commits again and its lag stays (the post-crash "stall", 4 of 12 runs).

The fixed rule refuses any gap at the head (``min(acked) > committed``), so nothing is
ever committed past an unacked offset.

**A seek to the committed offsets that races the agent** (the post-crash stall). After a
restart whose tables need changelog recovery, ``Recovery`` resumes the flow for the
changelogs, then resumes the stream partitions and only then runs
``Consumer.perform_seek``, with the flow still on: the agent processes and commits
commands while the seek reads the committed offsets from the broker. The seek then writes
what it read over ``_committed_offset``, *behind* commits made meanwhile, whose offsets
have already left the acked list: a gap at the head that no ack can fill. And the fetch
loop, still iterating a batch fetched before the seek, moves ``_read_offset`` past the
seek's target, so the re-fetched messages are dropped as already read. Instrumented in
the crash test (1 run of 4): every stalled partition's committed offset was the first
one handled after the restart, with all later ones acked. ``perform_seek`` here stops the
flow and empties the agents' buffers first (the callers resume it right after, as they
do on the path without recovery) and never moves a committed offset back.

**Tables read and write the partition of "the current event".** A table key's store
(one RocksDB per partition) and its changelog partition come from the ``current_event``
context variable, which the stream iterator sets. An agent that handles batches
(``Stream.noack_take``) runs beside the iterator, in another task, where the variable is
unset: a write raised ``TypeError("Cannot modify table key from outside of stream
iteration")`` (the command agent crashed on its first batch), and a read searched every
partition's store. ``current_event(event)`` names the record whose key is read or
written; faust-streaming has no public way to do it.

**A batch agent that never sleeps.** ``Stream.noack_take(max_, within)`` waits ``within``
for its buffer and loops, buffer empty or not: with the command agents' 5 ms, ~200
wake-ups a second each, ~9 % of a core for an idle commands process (measured: 176 CPU
ticks in 20 s). ``take_batches`` is that loop with one change: it waits for the first
record with no timeout, and only then up to ``within`` for the batch to fill (a record
still waits at most ``within`` before its batch is handed out).

**A batch agent that reads only between batches.** ``noack_take`` stops taking records
while its caller handles a batch (one record waits at the gate), so the next batch holds
only what arrives in ``within`` after: the commands agent under a backlog of 12,000
commands handled 24 a batch, each batch paying a whole produce round trip (issue 22).
``take_batches`` hands out a copy of the buffer and empties it at once, so the next
batch fills (up to ``max_records``, then the stream waits) while this one is handled.
Those records are in flight as Faust counts them (not acked), so a rebalance waits for
them as it waits for the batch in hand.

Reproduced by ``tests/unit/pipeline/test_faust_fixes.py``; the crash test
(``tests/integration/test_event_topics.py``) covers the whole path.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from faust import streams as faust_streams
from faust.transport import consumer as faust_consumer
from faust.utils.functional import consecutive_numbers

_UPSTREAM_NEW_OFFSET = faust_consumer.Consumer._new_offset


def _new_offset(self: Any, tp: Any) -> int | None:
    """faust-streaming 0.15.3's ``Consumer._new_offset`` with the head-gap test fixed."""
    acked = self._acked[tp]
    if not acked:
        return None
    max_offset = max(acked)
    gap_for_tp = self._gap[tp]
    if gap_for_tp:
        # offsets known not to exist (transaction markers, compaction) count as acked
        candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda x: x.begin)
        if candidates:
            filled: list[int] = []
            for entry in candidates:
                filled.extend(range(entry.begin, entry.end))
            acked.extend(filled)
            gap_for_tp.chop(0, max(filled[-1], max_offset + 1))
    acked.sort()
    committed = self._committed_offset[tp]
    if committed is not None and acked[0] > committed:
        return None  # the message at ``committed`` is not acked yet: commit nothing
    batch = next(consecutive_numbers(acked))
    acked[: len(batch)] = []
    self._acked_index[tp].difference_update(batch)
    return batch[-1] + 1


_UPSTREAM_ACK = faust_consumer.Consumer.ack


def _ack(self: Any, message: Any) -> bool:
    """``Consumer.ack`` that refuses what was not processed in the current generation.

    faust-streaming's stream iterator *skips* a message that arrives while flow control
    is off (a rebalance or recovery in progress) or that was fetched in an older consumer
    generation, and acks it anyway ("otherwise the lag would increase"). Acked, it can be
    committed before it is fetched again, and then it is never processed: a lost command.
    Refused here, the message stays unacked and is delivered again after the seek to the
    committed offsets; handling it twice is harmless (commands are idempotent).
    """
    app = self.app
    if message.generation_id != app.consumer_generation_id or not app.flow_control.is_active():
        # no longer in flight (Faust's stop waits until nothing is), but not acked: its
        # offset is not committed, and it is delivered again
        self._unacked_messages.discard(message)
        return False
    return bool(_UPSTREAM_ACK(self, message))


async def _perform_seek(self: Any) -> None:
    """``Consumer.perform_seek`` with the flow stopped, never moving a commit back.

    Callers: ``Recovery`` (both paths resume the flow right after) and ``getmany``
    (flow already stopped). Stopping the flow ends the fetch loop's current batch, and
    clearing the buffers drops what was fetched before the seek (not acked, so fetched
    again from the committed offset, in order).
    """
    self.stop_flow()
    self.app.flow_control.suspend()
    self.app.flow_control.clear()
    committed = await self.seek_to_committed()
    for raw_tp, offset in committed.items():
        tp = faust_consumer.ensure_TP(raw_tp)
        self._read_offset[tp] = offset if offset is not None and offset >= 0 else None
        if offset:
            known = self._committed_offset.get(tp)
            # a commit that landed after the broker was asked is newer than its answer
            self._committed_offset[tp] = offset if known is None else max(known, offset)


@contextmanager
def current_event(event: Any) -> Iterator[None]:
    """Within the block, Faust tables use ``event``'s partition (its store and its
    changelog partition). Only for synchronous table access: nothing awaited inside."""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


async def take_batches(stream: Any, max_records: int, within_s: float) -> AsyncIterator[list[Any]]:
    """Batches of at most ``max_records`` events of ``stream``, each handed out
    ``within_s`` after its first record at the latest, or as soon as it is full; none
    acked (the caller acks once it has handled a batch). faust-streaming 0.15.3's
    ``Stream.noack_take`` (``faust/streams.py``) but for the wait on an empty buffer, which
    has no timeout here, and the next batch, which fills while the caller handles this
    one (see the module docstring)."""
    buffer: list[Any] = []
    started, full, consumed = asyncio.Event(), asyncio.Event(), asyncio.Event()
    enable_acks = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        try:
            event = stream.current_event
            if event is None:
                raise RuntimeError("take buffer found current_event None")
            buffer.append(event)
            started.set()
            if len(buffer) >= max_records:
                full.set()
                consumed.clear()
                await stream.wait(consumed)  # never more than max_records a batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False  # acked by the caller, after handling
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))  # consumed in the background
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(started)  # no timeout: sleep while idle
            await stream.wait_for_stopped(full, timeout=within_s)
            if not buffer:
                started.clear()
                continue
            batch = buffer[:]
            buffer.clear()
            started.clear()
            full.clear()
            consumed.set()
            yield batch
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)


def install() -> None:
    """Replace ``Consumer._new_offset``, ``Consumer.ack`` and ``Consumer.perform_seek``
    (idempotent; call before the app starts)."""
    faust_consumer.Consumer._new_offset = _new_offset  # type: ignore[method-assign]
    faust_consumer.Consumer.ack = _ack  # type: ignore[method-assign]
    faust_consumer.Consumer.perform_seek = _perform_seek  # type: ignore[method-assign]
