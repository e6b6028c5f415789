"""The stall rule of pipeline/watchdog.py, on a clock the test moves."""

from __future__ import annotations

import asyncio

from pipeline.watchdog import StallWatchdog

TP = ("users.commands", 1)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def dog(clock: Clock) -> StallWatchdog:
    async def restart() -> None:
        return None

    return StallWatchdog(positions=dict, restart=restart, stall_s=20, now=clock)


def test_a_backlog_that_does_not_move_for_the_threshold_is_a_stall() -> None:
    clock = Clock()
    w = dog(clock)
    assert w.stalled({TP: (340, 403)}) == []
    clock.t = 19.9
    assert w.stalled({TP: (340, 403)}) == []
    clock.t = 20.0
    assert w.stalled({TP: (340, 403)}) == [TP]


def test_progress_or_no_backlog_is_not_a_stall() -> None:
    clock = Clock()
    w = dog(clock)
    w.stalled({TP: (340, 403)})
    clock.t = 15
    assert w.stalled({TP: (350, 403)}) == []  # moved: the clock starts again
    clock.t = 30
    assert w.stalled({TP: (350, 403)}) == []
    clock.t = 100
    assert w.stalled({TP: (403, 403)}) == []  # caught up: nothing to wait for
    clock.t = 200
    assert w.stalled({TP: (403, 403)}) == []


async def test_run_restarts_once_per_stall() -> None:
    clock = Clock()
    restarted = asyncio.Event()

    async def restart() -> None:
        restarted.set()

    def positions() -> dict:
        clock.t += 30  # every check is 30 s later on the watchdog's clock
        return {TP: (340, 403)}

    w = StallWatchdog(positions=positions, restart=restart, stall_s=20, every_s=0.01, now=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await asyncio.wait_for(restarted.wait(), 5)
    stop.set()
    await task
    assert w.restarts >= 1
