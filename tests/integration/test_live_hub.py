"""The identity notification hub on real Redis (issue 11): who sees what, resume without
a gap or a repeat, and a subscriber that does not read is dropped, its memory bounded.

``bench/ws.py``'s bursts never fill a queue (21 batches of 256 fit), so the drop is
proven here, with a queue of 4 batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api import live
from api.notifications import Audience, IdentityNotifications
from connectors.redis import open_redis
from pipeline.projections.identity import NOTIFY_STREAM, STAFF, email_audience
from tests.support import Endpoints

pytestmark = pytest.mark.integration

STUDENT = email_audience("ada@example.org")


def entry(subject: str, audience: str) -> dict[str, str]:
    return {"event_type": "X", "subject": subject, "aggregate_version": "1",
            "at": "2026-12-03T09:00:00+00:00", "audience": audience}  # fmt: skip


async def collect(items: AsyncIterator[live.LiveItem], n: int) -> list[Any]:
    """The subjects of the first ``n`` notifications after the ready marker."""
    got: list[str] = []
    async for item in items:
        if item.payload is not None:
            got += [note["subject"] for note in item.payload.notes]
            if len(got) >= n:
                return got
    return got


def test_filtering_resume_and_dropping_a_slow_subscriber(
    endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "QUEUE_MAX", 4)
    url = endpoints.redis_url.rsplit("/", 1)[0] + "/10"

    async def scenario() -> None:
        redis = open_redis(url)
        await redis.delete(NOTIFY_STREAM)
        hub = IdentityNotifications(redis)
        staff = hub.stream(Audience(STAFF, frozenset({"prospect", "student"})), None)
        student = hub.stream(Audience(STUDENT, frozenset({"student"})), None)
        slow = hub.stream(Audience(STAFF, frozenset({"prospect"})), None)
        for stream in (staff, student, slow):
            assert (await anext(stream)).payload is None  # ready: subscribed
        first = await redis.xadd(NOTIFY_STREAM, entry("prospect/1", STAFF))
        await redis.xadd(NOTIFY_STREAM, entry("student/me", f"{STAFF} {STUDENT}"))
        await redis.xadd(
            NOTIFY_STREAM, entry("student/other", f"{STAFF} {email_audience('x@y.z')}")
        )
        seen_by_staff = await asyncio.wait_for(collect(staff, 3), 10)
        assert seen_by_staff == ["prospect/1", "student/me", "student/other"]
        assert await asyncio.wait_for(collect(student, 1), 10) == ["student/me"]

        # resume after the first entry: the two after it, once each, then live ones
        resumed = hub.stream(Audience(STAFF, frozenset({"prospect", "student"})), first.decode())
        assert (await anext(resumed)).payload is None
        await redis.xadd(NOTIFY_STREAM, entry("prospect/2", STAFF))
        assert await asyncio.wait_for(collect(resumed, 3), 10) == [
            "student/me", "student/other", "prospect/2"
        ]  # fmt: skip

        # the slow one never reads: batches pile up to QUEUE_MAX, then it is dropped
        for n in range(3, 12):
            await redis.xadd(NOTIFY_STREAM, entry(f"prospect/{n}", STAFF))
            await asyncio.sleep(0.05)  # one XREAD batch each
        dropped = [s for s in hub.subscribers if s.who == Audience(STAFF, frozenset({"prospect"}))]
        assert dropped == []  # no longer a subscriber: the reader stopped feeding it
        rest = [item async for item in slow]  # what was queued, then the end
        assert 1 <= len(rest) <= 4
        await staff.aclose()
        await student.aclose()
        await resumed.aclose()
        await redis.aclose()

    asyncio.run(scenario())
