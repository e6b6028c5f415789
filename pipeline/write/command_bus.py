"""Submitting commands: produce to the right topic, then (optionally) wait for the result.

Used by the API's command routes and by ``streamfold create-admin``. The bus never
touches a store: commands go to Kafka and results come back from ``command.results``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.kafka import AsyncProducer
from pipeline.common import topics
from pipeline.domain.handling import CommandResult
from pipeline.write.result_waiter import ResultWaiter
from pipeline.write.routing import ClaimKeys, submission


class CommandBus:
    """``await submit(command)`` -> CommandResult, or None if none came within the timeout."""

    def __init__(
        self, bootstrap: str, *, client_id: str, timeout_s: float, claim_keys: ClaimKeys
    ) -> None:
        # linger 1 ms: a request waits for its one command; nothing else would fill the batch
        self.producer = AsyncProducer(
            bootstrap, client_id=client_id, delivery_timeout_s=timeout_s, **{"linger.ms": 1}
        )
        self.claim_keys = claim_keys
        self.waiter = ResultWaiter(bootstrap, topics.COMMAND_RESULTS)
        self.timeout_s = timeout_s

    async def start(self) -> None:
        await self.waiter.start()

    async def submit(self, command: Any, *, timeout_s: float | None = None) -> CommandResult | None:
        """Produce ``command`` (acks=all) and wait up to ``timeout_s`` (default: the bus's)
        for its result. None means no result yet: the command is durably queued and its
        result will be at ``GET /api/commands/{command_id}``.

        Raises:
            KafkaDeliveryError: the command was not accepted by the brokers.
        """
        [result] = await self.submit_chain(command, lambda _result: None, 0, timeout_s=timeout_s)
        return result

    async def submit_chain(
        self,
        command: Any,
        caused: Callable[[CommandResult], str | None],
        steps: int,
        *,
        timeout_s: float | None = None,
    ) -> list[CommandResult | None]:
        """Submit ``command`` and wait for its result and then, while each is accepted
        (and not a duplicate), for the result of the command it caused, ``steps`` times,
        all within one ``timeout_s``. ``caused(result)`` is the id of the command a
        process manager sends because of ``result``'s events (``pipeline/domain/identity/
        reactions.py``: derived from the event id), or None for none. Returns ``steps + 1``
        entries (``command`` first), None for each that did not come (or was not reached).

        A caused command's result can come before ``caused`` is asked: the waiter answers
        from the results it saw in the last seconds (``ResultWaiter.expect(seen=True)``).

        Raises:
            KafkaDeliveryError: the command was not accepted by the brokers.
        """
        results: list[CommandResult | None] = [None] * (steps + 1)
        command_id = command.command_id
        # expected before producing: a fast result must not answer before we listen
        future = self.waiter.expect(command_id)
        try:
            topic, key, value = submission(command, self.claim_keys)
            await self.producer.produce(topic, value, key=key)
            deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
            for index in range(steps + 1):
                left = max(0.0, deadline - time.monotonic())
                results[index] = result = await self.waiter.wait(future, left)
                if result is None or result.status != "accepted" or result.duplicate:
                    break  # a duplicate's follow-ups happened the first time: none will come
                following = caused(result) if index < steps else None
                if following is None:
                    break
                self.waiter.forget(command_id, future)
                command_id, future = following, self.waiter.expect(following, seen=True)
            return results
        finally:
            # a failed produce or a cancelled request must not leave its waiter behind
            self.waiter.forget(command_id, future)

    async def result_of(
        self, command_id: str, *, timeout_s: float | None = None
    ) -> CommandResult | None:
        """The result of a command someone else produced (a process manager's), whether it
        came in the last seconds (``ResultWaiter.expect(seen=True)``) or comes within
        ``timeout_s`` (default: the bus's); None if neither."""
        future = self.waiter.expect(command_id, seen=True)
        try:
            return await self.waiter.wait(
                future, self.timeout_s if timeout_s is None else timeout_s
            )
        finally:
            self.waiter.forget(command_id, future)

    async def send(self, command: Any) -> None:
        """Produce ``command`` without waiting for its result (fire and forget, still acked)."""
        topic, key, value = submission(command, self.claim_keys)
        await self.producer.produce(topic, value, key=key)

    async def stop(self) -> None:
        await self.waiter.stop()
        self.producer.close()
