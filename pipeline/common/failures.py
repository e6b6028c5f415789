"""The failure policy of the consumers that write stores: what is retried, for how long,
and when a record is dead-lettered (quix-streams keeps the same decision in
``quixstreams/error_callbacks.py``; the retries are tenacity's, not loops of our own).

- **The store is down or slow** (a connection, a timeout, an engine that is busy): the
  batch is retried with capped exponential backoff (0.2 s doubling to 10 s) for as long as
  it takes. Nothing is skipped and nothing is committed meanwhile, so the outage shows as
  consumer lag (and a red ``/readyz`` after ``STREAMFOLD_STALL_THRESHOLD_S``).
- **A record the projection cannot apply** (the store refuses its rows for what they
  hold, or the handler raises anything else on it): the batch is halved until the one
  record is found; it goes to the dead-letter topic with the reason and the rest applies.
  Handlers are idempotent, so applying a half twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from redis.exceptions import RedisError, ResponseError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
)

from connectors.clickhouse import refusal
from connectors.exceptions import ConnectorError

log = structlog.get_logger(__name__)
T = TypeVar("T")

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 10.0


def is_outage(exc: BaseException) -> bool:
    """True for a store that failed (retry), False for a record at fault (dead-letter).

    Store errors are outages unless ClickHouse says it refuses the rows for what they hold
    (``connectors.clickhouse.refusal``, the one place that tells the two apart) or Redis
    answers with an error about the command (``ResponseError``: a wrong type, a script
    error). Anything that is not a store error is the handler failing on a record.
    """
    if isinstance(exc, ResponseError):
        return False
    if isinstance(exc, ClickHouseError | ConnectorError | RedisError | OSError):
        return refusal(exc) is None
    return False


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning(
            "store write failed, retrying",
            what=what,
            error=repr(error)[:300],
            attempt=state.attempt_number,
            in_s=round(state.upcoming_sleep, 2),
        )

    return before_sleep


async def until_stored(
    what: str,
    write: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[BaseException], bool] = lambda exc: True,
) -> T:
    """Run ``write`` until it succeeds, retrying the failures ``retry_on`` accepts (by
    default: every exception) with capped exponential backoff; anything else raises.

    ``what`` names the write in the logs. Cancellation always propagates.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(retry_on),  # an Exception only: cancellation propagates
        wait=wait_exponential(multiplier=RETRY_FIRST_S, min=RETRY_FIRST_S, max=RETRY_MAX_S),
        before_sleep=_log_retry(what),
        reraise=True,
    )

    async def attempt() -> T:
        # tenacity 9 awaits only what ``inspect`` calls a coroutine function
        # (``_utils.is_coroutine_callable``); a lambda returning a coroutine would be
        # "called" and its coroutine never awaited.
        return await write()

    return await retrying(attempt)
