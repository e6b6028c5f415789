"""When ``/readyz`` calls a consumer group stalled (issue 7: a sink retrying one batch
forever left it green). The integration test drives a real consumer and the real route:
``tests/integration/test_sink_hardening.py``."""

from __future__ import annotations

from api.routes.health import StallWatch

G = "streamfold-tracking-sink"


def at(committed: int, end: int) -> dict[tuple[str, int], tuple[int, int]]:
    return {("tracking.events", 0): (committed, end), ("tracking.events", 1): (5, 5)}


def test_a_member_stuck_with_records_waiting_is_a_stall() -> None:
    watch = StallWatch(threshold_s=60)
    assert watch.check(G, at(10, 30), now=0, members_stalled_s=[59.9]) is None
    assert watch.check(G, at(10, 30), now=1, members_stalled_s=[61.2]) == (20, 61.2)


def test_a_stuck_member_with_nothing_waiting_is_not() -> None:
    watch = StallWatch(threshold_s=60)
    assert watch.check(G, at(30, 30), now=0, members_stalled_s=[500]) is None


def test_any_stuck_member_counts() -> None:
    watch = StallWatch(threshold_s=60)
    assert watch.check(G, at(10, 30), now=0, members_stalled_s=[0.1, 90]) == (20, 90)


def test_without_members_here_unchanged_commits_are_a_stall() -> None:
    """``streamfold api`` beside separate workers: it watches the committed offsets."""
    watch = StallWatch(threshold_s=60)
    assert watch.check(G, at(10, 30), now=100, members_stalled_s=[]) is None  # first look
    assert watch.check(G, at(10, 35), now=159, members_stalled_s=[]) is None
    assert watch.check(G, at(10, 40), now=160, members_stalled_s=[]) == (30, 60)
    # a commit moves it: the clock starts again
    assert watch.check(G, at(11, 40), now=161, members_stalled_s=[]) is None
    assert watch.check(G, at(11, 40), now=220, members_stalled_s=[]) is None
    assert watch.check(G, at(11, 40), now=221, members_stalled_s=[]) == (29, 60)
    # caught up: fine however long the offsets stay put
    assert watch.check(G, at(40, 40), now=1000, members_stalled_s=[]) is None


def test_groups_are_watched_separately() -> None:
    watch = StallWatch(threshold_s=60)
    watch.check("a", at(10, 30), now=0, members_stalled_s=[])
    watch.check("b", at(10, 30), now=50, members_stalled_s=[])
    assert watch.check("a", at(10, 30), now=70, members_stalled_s=[]) == (20, 70)
    assert watch.check("b", at(10, 30), now=70, members_stalled_s=[]) is None
