"""One-time password links on a real Redis (issue 22): the token is stored only hashed,
a link is used once (of two concurrent redemptions exactly one wins) and expires."""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from api import password_links
from connectors.redis import open_redis
from pipeline.common.problems import Problem
from tests.support import Endpoints

pytestmark = pytest.mark.integration


def test_stored_hashed_used_once_and_expired(endpoints: Endpoints) -> None:
    async def scenario() -> None:
        redis = open_redis(endpoints.redis_url)
        try:
            link = await password_links.issue(redis, "user-1", ttl_s=60)
            keys = [k async for k in redis.scan_iter(f"{password_links.PREFIX}*")]
            digest = hashlib.sha256(link.token.encode()).hexdigest()
            assert password_links.PREFIX.encode() + digest.encode() in keys
            assert not any(link.token.encode() in k for k in keys)  # never the token itself
            both = await asyncio.gather(
                password_links.redeem(redis, link.token),
                password_links.redeem(redis, link.token),
                return_exceptions=True,
            )
            assert sorted(map(str, both)) == ["this link was used already: ask for a new one",
                                              "user-1"]  # fmt: skip
            used = [b for b in both if isinstance(b, Problem)]
            assert (used[0].status, used[0].slug) == (409, "link-used")

            short = await password_links.issue(redis, "user-2", ttl_s=1)
            key = password_links.PREFIX + hashlib.sha256(short.token.encode()).hexdigest()
            deadline = time.monotonic() + 10
            while await redis.exists(key):  # Redis expires it; wait for that, not a guess
                assert time.monotonic() < deadline, "the link never expired"
                await asyncio.sleep(0.05)
            with pytest.raises(Problem) as expired:
                await password_links.redeem(redis, short.token)
            assert (expired.value.status, expired.value.slug) == (410, "link-expired")
            # redeeming an expired link must not create a key that outlives it
            assert not await redis.exists(key)
        finally:
            await redis.aclose()

    asyncio.run(scenario())
