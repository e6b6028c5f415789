"""The failure policy (``pipeline/common/failures.py``): what is retried, what is a
record's fault."""

from __future__ import annotations

import asyncio

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from connectors.exceptions import KafkaDeliveryError
from pipeline.common import failures


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("connection refused"),
        RedisConnectionError("down"),
        KafkaDeliveryError("broker gone"),
        ConnectionResetError(),
        DatabaseError("memory", code=241, name="MEMORY_LIMIT_EXCEEDED"),
    ],
)
def test_store_failures_are_outages(exc: BaseException) -> None:
    assert failures.is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad record"),
        KeyError("message_id"),
        ResponseError("WRONGTYPE"),
        DatabaseError("x", code=53, name="TYPE_MISMATCH"),
    ],
)
def test_a_record_at_fault_is_not_an_outage(exc: BaseException) -> None:
    assert not failures.is_outage(exc)


def test_until_stored_retries_until_the_write_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failures, "RETRY_FIRST_S", 0.001)
    calls = []

    async def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("down")
        return "stored"

    # a lambda returning the coroutine, as callers write it: it must be awaited
    assert asyncio.run(failures.until_stored("t", lambda: write())) == "stored"
    assert len(calls) == 3


def test_until_stored_raises_what_it_may_not_retry() -> None:
    async def write() -> None:
        raise ValueError("poison")

    with pytest.raises(ValueError, match="poison"):
        asyncio.run(failures.until_stored("t", write, retry_on=failures.is_outage))
