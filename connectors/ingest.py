"""Publishing SDK events: the ingestion routes' only way into Kafka, behind their rate
limits."""

from __future__ import annotations

from connectors.kafka import AsyncProducer
from connectors.keys import SystemKey
from connectors.ratelimit import Buckets, Decision, Limit
from pipeline import topics
from pipeline.domain.tracking import TrackedEvent


class Ingest:
    """Charges SDK requests to their system's and their partner's token buckets and
    publishes accepted events to ``tracking.raw`` (key = system id)."""

    def __init__(
        self,
        producer: AsyncProducer,
        buckets: Buckets,
        *,
        per_system: Limit,
        per_partner: Limit,
    ) -> None:
        self.producer = producer
        self.buckets = buckets
        self.per_system = per_system
        self.per_partner = per_partner

    async def charge(self, system: SystemKey, events: int) -> Decision:
        """Take ``events`` tokens (events submitted, accepted or not) from the bucket of
        ``system`` (its API key) and from its partner's, shared by all the partner's
        systems: from both or, when either is short, from neither. ``limited_by`` of a
        refusal is ``"system"`` or ``"partner"``.

        Raises ``redis`` connection/timeout errors when Redis does not answer (the API
        turns them into a 503).
        """
        decision = await self.buckets.take(
            {
                f"ingest:system:{system.system_id}": self.per_system,
                f"ingest:partner:{system.partner_id}": self.per_partner,
            },
            cost=events,
        )
        if decision.limited_by is None:
            return decision
        kind = "partner" if decision.limited_by.startswith("ingest:partner:") else "system"
        return Decision(False, decision.tokens_left, decision.retry_after_s, kind)

    async def publish(self, events: list[TrackedEvent]) -> None:
        """Enqueue all, then wait once for every ack.

        Raises:
            KafkaDeliveryError: some event was not acknowledged; the SDK should retry
                the request (message ids make the retry harmless).
        """
        batch = self.producer.deliveries()
        for e in events:
            batch.produce(topics.TRACKING_RAW, e.to_json(), key=e.system_id.encode())
        await batch.wait()
