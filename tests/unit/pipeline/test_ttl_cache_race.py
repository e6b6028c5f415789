"""A cached entry that expires between "is it there?" and "give it to me" is a miss, not
a KeyError (seen on a cold ``make run``: the validation process stopped on one)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from api.security import Account, Accounts
from pipeline.edge.recording import Structures


class Ticking:
    """A clock that moves one second every time it is read."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self._ticks))


class FakeRedis:
    def __init__(self) -> None:
        self.gets = 0

    async def get(self, key: str) -> bytes:
        self.gets += 1
        return json.dumps({"unknown_events": "accept", "structures": {}}).encode()


class FakeClickHouse:
    async def query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "admin", "status": "active"}]


def test_a_view_expiring_between_two_looks_is_fetched_again() -> None:
    redis = FakeRedis()
    # every read of the clock is a second later: with two looks per call (the bug) one
    # of them lands exactly past the entry's expiry
    structures = Structures(redis, ttl_s=2.5, timer=Ticking())  # type: ignore[arg-type]
    views = [asyncio.run(structures.view("s-1")) for _ in range(4)]
    assert views == [{"unknown_events": "accept", "structures": {}}] * 4
    assert redis.gets >= 2  # it expired, and was fetched again


def test_an_account_expiring_between_two_looks_is_read_again() -> None:
    accounts = Accounts(FakeClickHouse(), ttl_s=1.5, timer=Ticking())  # type: ignore[arg-type]
    assert asyncio.run(accounts.get("u-1")) == Account(role="admin", status="active")
    assert asyncio.run(accounts.get("u-1")) == Account(role="admin", status="active")
