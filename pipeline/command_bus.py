"""Submitting commands: produce to the right topic, then (optionally) wait for the result.

Used by the API's command routes and by ``streamfold create-admin``. The bus never
touches a store: commands go to Kafka and results come back from ``command.results``.
"""

from __future__ import annotations

from typing import Any

from connectors.kafka import AsyncProducer
from pipeline import topics
from pipeline.domain.handling import CommandResult
from pipeline.result_waiter import ResultWaiter
from pipeline.routing import ClaimKeys, submission


class CommandBus:
    """``await submit(command)`` -> CommandResult, or None if none came within the timeout."""

    def __init__(
        self, bootstrap: str, *, client_id: str, timeout_s: float, claim_keys: ClaimKeys
    ) -> None:
        self.producer = AsyncProducer(bootstrap, client_id=client_id, delivery_timeout_s=timeout_s)
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
        future = self.waiter.expect(command.command_id)
        try:
            topic, key, value = submission(command, self.claim_keys)
            await self.producer.produce(topic, value, key=key)
            wait = self.timeout_s if timeout_s is None else timeout_s
            return await self.waiter.wait(future, wait)
        finally:
            # a failed produce or a cancelled request must not leave its waiter behind
            self.waiter.forget(command.command_id, future)

    async def send(self, command: Any) -> None:
        """Produce ``command`` without waiting for its result (fire and forget, still acked)."""
        topic, key, value = submission(command, self.claim_keys)
        await self.producer.produce(topic, value, key=key)

    async def stop(self) -> None:
        await self.waiter.stop()
        self.producer.close()
