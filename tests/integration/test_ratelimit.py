"""Ingest rate limits against a real Redis (issue 7, section 4): every submitted event is
charged to its system's bucket and to its partner's, from both or from neither.

The route's side (what is charged, the 429 it answers) is in
``tests/unit/api/test_ingest_segment.py``; this is the Lua script's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from api.security import RegistrationThrottle
from connectors.ratelimit import Buckets, Limit, TokenBuckets
from connectors.redis import open_redis
from pipeline.common.settings import Settings
from pipeline.edge.ingest import Ingest
from pipeline.projections.partner_keys.lookups import SystemKey
from tests.support import Endpoints

pytestmark = pytest.mark.integration

# Slow refill (1 token/s) so the few seconds a test takes cannot change its outcome.
PER_SYSTEM = Limit(rate_per_s=1, burst=5_000)
PER_PARTNER = Limit(rate_per_s=1, burst=1_000)


@asynccontextmanager
async def real_buckets(endpoints: Endpoints) -> AsyncIterator[Buckets]:
    # opened in the test's own event loop (an async fixture's loop would be another one)
    redis = open_redis(endpoints.redis_url)
    try:
        yield Buckets(redis)
    finally:
        await redis.aclose()


def ingest(
    buckets: Buckets, per_system: Limit = PER_SYSTEM, per_partner: Limit = PER_PARTNER
) -> Ingest:
    # charge() touches only the buckets: no producer, recorder or key resolver
    return Ingest(
        None,  # type: ignore[arg-type]
        buckets,
        recorder=None,  # type: ignore[arg-type]
        keys=None,  # type: ignore[arg-type]
        per_system=per_system,
        per_partner=per_partner,
        max_body_bytes=512 * 1024,
    )


def systems(partner: str, n: int) -> list[SystemKey]:
    return [SystemKey(f"sys-{uuid.uuid4()}", partner, active=True) for _ in range(n)]


async def test_a_partners_systems_share_the_partner_limit(endpoints: Endpoints) -> None:
    async with real_buckets(endpoints) as buckets:
        a, b = systems(f"par-{uuid.uuid4()}", 2)
        [other] = systems(f"par-{uuid.uuid4()}", 1)
        limiter = ingest(buckets)
        assert (await limiter.charge(a, 800)).allowed
        refused = await limiter.charge(b, 300)  # b's own bucket is full; the partner's is not
        assert not refused.allowed and refused.limited_by == "partner"
        assert 90 <= refused.retry_after_s <= 100  # 100 tokens short at 1 token/s
        assert (await limiter.charge(other, 300)).allowed  # another partner is not affected


async def test_a_refusal_takes_nothing_from_any_bucket(endpoints: Endpoints) -> None:
    async with real_buckets(endpoints) as buckets:
        a, b = systems(f"par-{uuid.uuid4()}", 2)
        limiter = ingest(buckets)
        assert (await limiter.charge(a, 1_000)).allowed  # the partner's bucket is empty now
        assert not (await limiter.charge(b, 500)).allowed
        own = await buckets.take({f"ingest:system:{b.system_id}": PER_SYSTEM}, 0)
        assert own.tokens_left == pytest.approx(PER_SYSTEM.burst)  # b's bucket kept its tokens


async def test_the_system_limit_holds_below_the_partner_limit(endpoints: Endpoints) -> None:
    async with real_buckets(endpoints) as buckets:
        [a] = systems(f"par-{uuid.uuid4()}", 1)
        limiter = ingest(
            buckets,
            per_system=Limit(rate_per_s=1, burst=1_000),
            per_partner=Limit(rate_per_s=1, burst=50_000),
        )
        assert (await limiter.charge(a, 900)).allowed
        refused = await limiter.charge(a, 200)
        assert not refused.allowed and refused.limited_by == "system"


async def test_one_shape_buckets_take_and_give_back(endpoints: Endpoints) -> None:
    """The login throttle's use: one bucket per call, a try given back."""
    redis = open_redis(endpoints.redis_url)
    try:
        single = TokenBuckets(redis, rate_per_s=1, burst=3)
        name = f"test-{uuid.uuid4()}"
        for _ in range(3):
            assert (await single.take(name)).allowed
        refused = await single.take(name)
        assert not refused.allowed and 0.5 <= refused.retry_after_s <= 1
        assert await single.give_back(name) == pytest.approx(1, abs=0.2)
        assert (await single.take(name)).allowed
    finally:
        await redis.aclose()


async def test_registrations_are_throttled_per_address(endpoints: Endpoints) -> None:
    """Seed 001: self-registration is limited per client address (a bucket of
    ``register_per_address`` refilling over ``register_window_s``)."""
    redis = open_redis(endpoints.redis_url)
    try:
        settings = Settings(env="test", register_per_address=3, register_window_s=3600)
        throttle = RegistrationThrottle(redis, settings)
        here, there = f"10.0.0.{uuid.uuid4().int % 250}", f"fd00::{uuid.uuid4().hex[:4]}"
        assert [await throttle.take(here) for _ in range(3)] == [0.0, 0.0, 0.0]
        wait_s = await throttle.take(here)
        assert 1100 < wait_s <= 1200  # one registration per 1,200 s refills
        assert await throttle.take(there) == 0.0  # another address has its own bucket
    finally:
        await redis.aclose()
