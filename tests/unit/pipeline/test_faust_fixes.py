"""The commit rule of pipeline/write/faust_fixes.py against faust-streaming's own."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP as FaustTP
from intervaltree import IntervalTree

from pipeline.write import faust_fixes

TP = ("users.commands", 5)


def consumer(committed: int, acked: list[int]) -> SimpleNamespace:
    return SimpleNamespace(
        _acked=defaultdict(list, {TP: list(acked)}),
        _acked_index=defaultdict(set, {TP: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {TP: committed}),
    )


def test_upstream_commits_past_a_message_never_acked() -> None:
    # committed = 340 is the next offset to read; 340 itself was never acked
    assert faust_fixes._UPSTREAM_NEW_OFFSET(consumer(340, [341, 342]), TP) == 343  # lost
    assert faust_fixes._UPSTREAM_NEW_OFFSET(consumer(340, [342, 343]), TP) is None  # stuck


def test_fixed_rule_never_commits_past_an_unacked_offset() -> None:
    assert faust_fixes._new_offset(consumer(340, [341, 342]), TP) is None
    assert faust_fixes._new_offset(consumer(340, [342, 343]), TP) is None
    assert faust_fixes._new_offset(consumer(340, [340, 341, 342, 344]), TP) == 343
    assert faust_fixes._new_offset(consumer(340, []), TP) is None


def test_known_gaps_still_count_as_acked() -> None:
    c = consumer(340, [340, 343])
    c._gap[TP].addi(341, 343)  # 341-342 are transaction markers
    assert faust_fixes._new_offset(c, TP) == 344


class Msg:
    def __init__(self, generation_id: int) -> None:
        self.generation_id = generation_id
        self.acked = False


def test_a_message_from_another_generation_or_a_paused_flow_is_not_acked() -> None:
    flow = {"active": True}
    app = SimpleNamespace(
        consumer_generation_id=3,
        flow_control=SimpleNamespace(is_active=lambda: flow["active"]),
    )
    stale, current = Msg(2), Msg(3)
    consumer = SimpleNamespace(app=app, _unacked_messages={stale, current})
    assert faust_fixes._ack(consumer, stale) is False
    flow["active"] = False
    assert faust_fixes._ack(consumer, current) is False
    # neither is acked (their offsets stay uncommitted and they come again), and neither
    # is in flight any more (Faust's stop waits for in-flight messages: it would hang)
    assert not stale.acked and not current.acked
    assert consumer._unacked_messages == set()


class RacingConsumer:
    """The part of a Faust consumer ``perform_seek`` touches; a commit of offsets 340-359
    lands while the broker is being asked (what the crash test's restart did)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.flow_active = True
        self.app = SimpleNamespace(
            flow_control=SimpleNamespace(
                suspend=lambda: self.events.append("suspend"),
                clear=lambda: self.events.append("clear"),
            )
        )
        self._committed_offset = defaultdict(lambda: None, {TP: 340})
        self._read_offset = defaultdict(lambda: None, {TP: 371})

    def stop_flow(self) -> None:
        self.events.append("stop")
        self.flow_active = False

    async def seek_to_committed(self) -> dict[object, int]:
        assert not self.flow_active, "seeking while the agent still runs"
        self._committed_offset[TP] = 360  # the commit that raced the question
        return {FaustTP(*TP): 340}


def test_the_seek_stops_the_flow_first_and_never_moves_a_commit_back() -> None:
    c = RacingConsumer()
    asyncio.run(faust_fixes._perform_seek(c))
    assert c.events[:3] == ["stop", "suspend", "clear"]
    assert c._committed_offset[TP] == 360  # upstream wrote 340 back: 340-359 were gone
    # fetched again from the seek's target; what is below the commit is dropped on ack
    assert c._read_offset[TP] == 340


def test_current_event_names_the_partition_tables_use_and_restores_the_previous() -> None:
    from faust.streams import current_event

    class Event:  # weakly referenced, as Faust refers to events
        def __init__(self, partition: int) -> None:
            self.message = SimpleNamespace(partition=partition)

    older, newer = Event(1), Event(4)
    with faust_fixes.current_event(newer):
        assert current_event() is newer
        with faust_fixes.current_event(older):
            assert current_event().message.partition == 1
        assert current_event() is newer
    assert current_event() is None
