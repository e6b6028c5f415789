"""Publishing SDK events: the ingestion routes' only way into Kafka, behind their rate
limits. Each event is recorded at the edge when it can be (``pipeline.recording``)."""

from __future__ import annotations

from connectors.kafka import AsyncProducer
from connectors.keys import SystemKey
from connectors.ratelimit import Buckets, Decision, Limit
from pipeline import topics
from pipeline.domain.tracking import TrackedEvent
from pipeline.recording import Recorder


class Ingest:
    """Charges SDK requests to their system's and their partner's token buckets and
    publishes accepted events (key = system id): recorded, to ``tracking.events``; what
    ``recorder`` refuses, to ``tracking.raw``, where the validation consumer takes a
    second look and dead-letters it with the reasons."""

    def __init__(
        self,
        producer: AsyncProducer,
        buckets: Buckets,
        *,
        recorder: Recorder,
        per_system: Limit,
        per_partner: Limit,
    ) -> None:
        self.producer = producer
        self.buckets = buckets
        self.recorder = recorder
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

    async def publish(self, events: list[TrackedEvent]) -> int:
        """Enqueue all, then wait once for every ack. Returns how many were recorded here
        (the rest went to ``tracking.raw``).

        Recording at the edge skips a Kafka round trip and a consumer for nearly every
        event: at B=1000 the validation consumer was the slowest stage (~55 µs an event
        of CPU, decoding JSON the API had just encoded).

        Raises:
            KafkaDeliveryError: some event was not acknowledged; the SDK should retry
                the request (message ids make the retry harmless).
            redis errors: a system's structures are not cached and Redis does not
                answer (the API answers 503).
        """
        batch = self.producer.deliveries()
        recorded = 0
        for e in events:
            key = e.system_id.encode()
            outcome = await self.recorder.record(e)
            if isinstance(outcome, bytes):
                batch.produce(topics.TRACKING_EVENTS, outcome, key=key)
                recorded += 1
            else:
                batch.produce(topics.TRACKING_RAW, e.to_json(), key=key)
        await batch.wait()
        return recorded
