"""Step 1 of the last-admin check (``api/last_admin.py``): the active admins come from a
roster read at most once per TTL, and a grant mark counts a user the roster does not show
yet."""

from __future__ import annotations

import asyncio
from typing import Any

from api.last_admin import GRANT_MARK, AdminRoster
from pipeline.common.settings import Settings
from pipeline.projections.users import ACTIVE_ADMINS_SQL


class ReadModel:
    """Active admin ids; counts the queries, each taking ``delay_s``."""

    def __init__(self, *admins: str, delay_s: float = 0.0) -> None:
        self.admins = set(admins)
        self.delay_s = delay_s
        self.queries = 0

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        assert sql == ACTIVE_ADMINS_SQL
        self.queries += 1
        await asyncio.sleep(self.delay_s)
        return [{"user_id": user_id} for user_id in sorted(self.admins)]


class Marks:
    """The Redis commands the roster uses, over a set of keys."""

    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)

    async def exists(self, key: str) -> int:
        return int(key in self.keys)


class Services:
    def __init__(self, read_model: ReadModel, marks: Marks) -> None:
        self.clickhouse = read_model
        self.redis = marks
        self.settings = Settings(env="test")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def roster(
    read_model: ReadModel, marks: Marks | None = None, ttl_s: float = 2.0
) -> tuple[AdminRoster, Clock]:
    clock = Clock()
    services: Any = Services(read_model, marks or Marks())
    return AdminRoster(services, ttl_s=ttl_s, timer=clock), clock


def test_the_roster_is_read_once_per_ttl_and_then_again() -> None:
    read_model = ReadModel("a-1")
    admins, clock = roster(read_model)

    async def scenario() -> None:
        assert await admins.may_be_admin("a-1")
        assert not await admins.may_be_admin("u-2")
        assert read_model.queries == 1
        read_model.admins.add("u-2")  # promoted, and (unlike the API) not marked
        clock.now += 1.9
        assert not await admins.may_be_admin("u-2")  # within the TTL: the old roster
        clock.now += 0.2
        assert await admins.may_be_admin("u-2")
        assert read_model.queries == 2

    asyncio.run(scenario())


def test_a_marked_grant_counts_before_the_roster_shows_it() -> None:
    admins, _ = roster(ReadModel("a-1"), Marks(GRANT_MARK.format(user_id="u-2")))

    async def scenario() -> None:
        assert await admins.may_be_admin("u-2")
        assert not await admins.may_be_admin("u-3")

    asyncio.run(scenario())


def test_callers_of_an_expired_roster_share_one_query() -> None:
    read_model = ReadModel("a-1", delay_s=0.05)
    admins, _ = roster(read_model)

    async def scenario() -> list[bool]:
        return await asyncio.gather(*(admins.may_be_admin("a-1") for _ in range(20)))

    assert asyncio.run(scenario()) == [True] * 20
    assert read_model.queries == 1


def test_a_ttl_of_zero_reads_every_time() -> None:
    read_model = ReadModel("a-1")
    admins, _ = roster(read_model, ttl_s=0)

    async def scenario() -> None:
        for _ in range(3):
            assert await admins.may_be_admin("a-1")

    asyncio.run(scenario())
    assert read_model.queries == 3
