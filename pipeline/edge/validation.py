"""Validation: the second look at what the API could not record at the edge.

``tracking.raw`` (key = system id) holds events the API refused to record (and records
from before it recorded any). Per record, stateless: decode the SDK event (a record that is
not one is dead-lettered), then ``pipeline.edge.recording.Recorder`` decides, as at the
API: ``TrackingEventRecorded`` to ``tracking.events`` (same key), or ``tracking.dlq`` with
the reasons. "Recorded once" is the sink's job (``pipeline/projections/tracking/sink.py``):
the event id is uuid5(system, message id), whichever process records it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from connectors import metrics
from connectors.batch import BatchConsumer, BatchPipeline, Record
from connectors.kafka import AsyncProducer, Deliveries
from pipeline.common import topics
from pipeline.common.deadletter import DeadLetters
from pipeline.common.settings import Settings
from pipeline.domain import jsontext
from pipeline.domain.tracking import TrackedEvent
from pipeline.edge.recording import Recorder, Refusal, Structures
from pipeline.projections.groups import validation_group
from schemas.codec import AvroCodec

TRACKING_DLQ = DeadLetters(topics.TRACKING_DLQ, agent="tracking")


class Validation:
    """Validates one batch of ``tracking.raw`` (see the module docstring)."""

    def __init__(self, *, recorder: Recorder, producer: AsyncProducer) -> None:
        self.recorder = recorder
        self.producer = producer

    async def run_batch(self, records: Sequence[Record]) -> None:
        """Produce every outcome, then wait once for all acks (the batch's commit follows).

        Raises ``KafkaDeliveryError`` when an outcome was not acknowledged: the batch is
        not committed and is read again."""
        out = self.producer.deliveries()
        outcomes: Counter[str] = Counter()
        for record in records:
            outcomes[await self._one(record, out)] += 1
        await out.wait()
        for reason, count in outcomes.items():
            outcome = "rejected" if reason else "accepted"
            metrics.TRACKING_EVENTS.labels("validation", outcome, reason).inc(count)

    async def _one(self, record: Record, out: Deliveries) -> str:
        """Produce ``record``'s outcome; returns "" if recorded, else the refusal's kind."""
        try:
            tracked = TrackedEvent.from_json_dict(jsontext.loads(record.value or b""))
        except (ValueError, KeyError, TypeError) as exc:
            TRACKING_DLQ.queue(out, record, f"not an SDK event: {exc}")
            return "not_sdk_event"
        outcome = await self.recorder.record(tracked)
        if isinstance(outcome, Refusal):
            body = {
                "reasons": outcome.reasons,
                "system_id": tracked.system_id,
                "partner_id": tracked.partner_id,
                "event": tracked.to_json_dict(),
            }
            TRACKING_DLQ.queue(
                out, record, "; ".join(outcome.reasons), value=jsontext.dumps_escaped(body)
            )
            return outcome.kind
        out.produce(topics.TRACKING_EVENTS, outcome, key=tracked.system_id.encode())
        return ""


def recorder(settings: Settings, *, codec: AvroCodec, redis: Redis, core: Any = None) -> Recorder:
    """The tracking decision (``pipeline.edge.recording``), as the API and validation make
    it; ``core``: the compiled module, whose validators the API's structures keep too."""
    structures = Structures(redis, ttl_s=settings.key_cache_ttl_s, core=core)
    return Recorder(structures, codec, settings.producer_name)


def create_validation(settings: Settings, *, codec: AvroCodec, redis: Redis) -> BatchPipeline:
    """``tracking.raw`` -> ``tracking.events`` | ``tracking.dlq`` (group
    ``<app id>-tracking-validation``): needs Kafka and Redis only, so it scales by count."""
    producer = AsyncProducer(
        settings.kafka_bootstrap, client_id=f"{settings.app_id}-validation", **{"linger.ms": 5}
    )
    validation = Validation(
        recorder=recorder(settings, codec=codec, redis=redis), producer=producer
    )
    consumer = BatchConsumer(
        settings.kafka_bootstrap,
        group_id=validation_group(settings.app_id),
        topics=[topics.TRACKING_RAW],
        handle=validation.run_batch,
        max_records=settings.validation_batch_records,
        max_wait_s=settings.validation_batch_ms / 1000,
    )
    return BatchPipeline(producer=producer, consumers=[consumer])
