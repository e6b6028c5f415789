"""Publishing SDK events: the ingestion routes' only way into Kafka."""

from __future__ import annotations

import asyncio
import json

from connectors.kafka import AsyncProducer
from connectors.ratelimit import TokenBuckets
from pipeline import topics
from pipeline.domain.tracking import TrackedEvent


class Ingest:
    """Publishes accepted SDK events to ``tracking.raw`` (key = system id) under a
    per-system token bucket."""

    def __init__(self, producer: AsyncProducer, buckets: TokenBuckets) -> None:
        self.producer = producer
        self.buckets = buckets

    async def publish(self, events: list[TrackedEvent]) -> None:
        """Enqueue all, then wait for every ack (no per-event await on the hot path).

        Raises:
            KafkaDeliveryError: some event was not acknowledged; the SDK should retry
                the request (message ids make the retry harmless).
        """
        futures = [
            self.producer.produce_nowait(
                topics.TRACKING_RAW,
                json.dumps(e.to_json_dict(), separators=(",", ":")).encode(),
                key=e.system_id.encode(),
            )
            for e in events
        ]
        await asyncio.gather(*futures)
