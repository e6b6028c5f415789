"""The timeline projection against a reference model, on a real Redis (issue 10, section 2).

A hypothesis state machine writes a history through the real write side (``handle`` of the
chirp and follow aggregates: the events are exactly the ones the command agents emit),
and delivers it to the projection the way Kafka may: each aggregate's events in order
(one key, one partition), the two topics and the keys interleaved at random, batches of
any size, records delivered again. Authors cross the celebrity line both ways (a line of
3 followers, demoted below 2; the ``crowd`` rule makes the crossings likely: without it a
mutant that skipped the demotion backfill went unnoticed).

After every step, every user's feed (the ``feed`` script, paged) equals the reference:
pull everything from the events delivered so far (the chirps of the authors the user
follows, not deleted, newest first, ties by id descending).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from redis.asyncio import Redis

from pipeline.domain import chirps, follows
from pipeline.domain.handling import Snapshot, handle
from pipeline.domain.timeline_policy import TimelinePolicy
from pipeline.projections import timelines
from pipeline.projections.projection import Context, Decoded
from pipeline.write.aggregates import CHIRPS, FOLLOWS
from schemas.envelope import Envelope
from tests.support import Endpoints

USERS = [str(uuid.UUID(int=i + 1)) for i in range(4)]
POLICY = TimelinePolicy(cap=800, backfill=100, celebrity_followers=3, hysteresis=0.2)
_T0 = datetime(2026, 12, 1, tzinfo=UTC)
_DB = 7  # a database of its own on the session's Redis: flushed per example


def reference_feed(delivered: list[Envelope], user: str) -> list[str]:
    """The feed computed by pulling everything: chirp ids, feed order."""
    following: dict[tuple[str, str], bool] = {}
    posted: dict[str, tuple[int, str]] = {}
    deleted: set[str] = set()
    for e in delivered:
        if e.event_type == "UserFollowed":
            following[(e.data["follower_id"], e.data["followee_id"])] = True
        elif e.event_type == "UserUnfollowed":
            following[(e.data["follower_id"], e.data["followee_id"])] = False
        elif e.event_type == "ChirpPosted":
            ms = int(e.occurred_at.timestamp() * 1000)
            posted[e.data["chirp_id"]] = (ms, e.data["author_id"])
        elif e.event_type == "ChirpDeleted":
            deleted.add(e.data["chirp_id"])
    visible = [
        (ms, cid)
        for cid, (ms, author) in posted.items()
        if cid not in deleted and following.get((user, author), False)
    ]
    return [cid for ms, cid in sorted(visible, reverse=True)]


class TimelineModel(RuleBasedStateMachine):
    endpoints: Endpoints

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(self.endpoints.redis_url, db=_DB)
        self.loop.run_until_complete(self.redis.flushdb())
        self.handler = timelines.TimelineHandler(POLICY, timelines.Scripts.on(self.redis))
        self.snapshots: dict[str, Snapshot] = {}
        self.queues: dict[str, list[Envelope]] = {}  # key -> events not yet delivered
        self.sent: dict[str, list[Envelope]] = {}  # key -> events delivered (a prefix)
        self.chirps: list[tuple[str, str]] = []  # (chirp id, author)
        self.clock = itertools.count(1)
        self.ids = itertools.count(1000)  # deterministic ids: hypothesis replays a run

    def teardown(self) -> None:
        self.loop.run_until_complete(self.redis.aclose())
        self.loop.close()

    # -- the write side -----------------------------------------------------------------

    def _command(self, spec: Any, command: Any) -> None:
        snapshot = self.snapshots.get(command.aggregate_id, Snapshot(state=None))
        outcome = handle(spec, snapshot, command, producer="model", window=8)
        if outcome.result.status == "accepted":
            self.snapshots[command.aggregate_id] = outcome.snapshot
            self.queues.setdefault(command.aggregate_id, []).extend(outcome.envelopes)

    def _fields(self, aggregate_id: str, actor: str) -> dict[str, Any]:
        # whole milliseconds, some equal: ties in the feed order are exercised too
        at = _T0 + timedelta(milliseconds=next(self.clock) // 2)
        return {"command_id": str(uuid.UUID(int=next(self.ids))), "aggregate_id": aggregate_id,
                "issued_at": at, "actor": actor}  # fmt: skip

    @rule(author=st.sampled_from(USERS))
    def post(self, author: str) -> None:
        chirp_id = str(uuid.UUID(int=next(self.ids)))
        self._command(
            CHIRPS.spec,
            chirps.PostChirp(**self._fields(chirp_id, author), author_id=author, text="hi"),
        )
        self.chirps.append((chirp_id, author))

    @precondition(lambda self: self.chirps)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        chirp_id, author = data.draw(st.sampled_from(self.chirps))
        self._command(CHIRPS.spec, chirps.DeleteChirp(**self._fields(chirp_id, author)))

    @rule(a=st.sampled_from(USERS), b=st.sampled_from(USERS), follow=st.booleans())
    def follow(self, a: str, b: str, follow: bool) -> None:
        kind = follows.FollowUser if follow else follows.UnfollowUser
        fields = self._fields(follows.follow_id(a, b), a)
        self._command(FOLLOWS.spec, kind(**fields, follower_id=a, followee_id=b))

    @rule(author=st.sampled_from(USERS), follow=st.booleans(), keep=st.integers(0, 2))
    def crowd(self, author: str, follow: bool, keep: int) -> None:
        """Everybody follows the author (over the celebrity line), or all but ``keep``
        unfollow (under the lower line): the crossings, both ways, in one step."""
        others = [u for u in USERS if u != author]
        for user in others if follow else others[keep:]:
            self.follow(user, author, follow)

    # -- delivery -----------------------------------------------------------------------

    def _apply(self, envelopes: list[Envelope]) -> None:
        async def run() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                ctx = Context("timelines", 1, {}, False, None, self.redis, pipe=pipe)  # type: ignore[arg-type]
                batch = [Decoded(e, "t", 0, i, None) for i, e in enumerate(envelopes)]  # type: ignore[arg-type]
                failed = await self.handler(batch, ctx)
                assert not failed, failed
                await pipe.execute()

        self.loop.run_until_complete(run())

    @precondition(lambda self: any(self.queues.values()))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """A batch: the next events of a few keys, in an order that keeps each key's."""
        batch: list[Envelope] = []
        for _ in range(data.draw(st.integers(1, 6))):
            keys = sorted(k for k, q in self.queues.items() if q)
            if not keys:
                break
            key = data.draw(st.sampled_from(keys))
            event = self.queues[key].pop(0)
            self.sent.setdefault(key, []).append(event)
            batch.append(event)
        self._apply(batch)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """At least once: a key's delivered events from some offset on, again."""
        key = data.draw(st.sampled_from(sorted(self.sent)))
        start = data.draw(st.integers(0, len(self.sent[key]) - 1))
        self._apply(self.sent[key][start:])

    # -- the property -------------------------------------------------------------------

    def _feed(self, user: str, limit: int) -> list[str]:
        async def read() -> list[str]:
            scripts = timelines.Scripts.on(self.redis)
            ids: list[str] = []
            cursor = None
            for _ in range(100):
                items, cursor = await timelines.feed(scripts, user, limit=limit, cursor=cursor)
                ids += [i.chirp_id for i in items]
                if cursor is None:
                    return ids
            raise AssertionError("the feed did not end")

        return self.loop.run_until_complete(read())

    @invariant()
    def feeds_equal_the_reference(self) -> None:
        delivered = [e for events in self.sent.values() for e in events]
        for user in USERS:
            expected = reference_feed(delivered, user)
            assert self._feed(user, limit=3) == expected, user

    @initialize()
    def start(self) -> None:
        pass


@pytest.fixture
def machine(endpoints: Endpoints) -> type[TimelineModel]:
    TimelineModel.endpoints = endpoints
    return TimelineModel


def test_feeds_equal_reference_model_under_any_delivery_order(
    machine: type[TimelineModel],
) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=150,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
