"""Publishing SDK events: the ingestion routes' only way into Kafka, behind their rate
limits. Each event is recorded at the edge when it can be (``pipeline.edge.recording``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.kafka import AsyncProducer
from connectors.ratelimit import Buckets, Decision, Limit
from pipeline.common import topics
from pipeline.domain import jsontext
from pipeline.domain.tracking import EventRejection, TrackedEvent, rejection_record
from pipeline.edge.recording import Recorder
from pipeline.projections.partner_keys.lookups import SystemKey

Refused = tuple[Any, EventRejection]
"""An event refused at the edge: (the event as sent, why)."""


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

    async def publish(
        self,
        events: list[TrackedEvent],
        refused: Sequence[Refused] = (),
        *,
        system: SystemKey | None = None,
        received_at: Any = None,
    ) -> int:
        """Enqueue all, then wait once for every ack. Returns how many were recorded here
        (the rest went to ``tracking.raw``). ``refused`` (events the edge refused, from
        ``system`` at ``received_at``) go to ``tracking.dlq`` with the reasons
        (``rejection_record``), in the same wait: a 200 means they are listed too.

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
        if refused:
            if system is None or received_at is None:
                raise ValueError("refused events need the system and the received time")
            for raw, rejection in refused:
                body = rejection_record(
                    raw,
                    rejection,
                    system_id=system.system_id,
                    partner_id=system.partner_id,
                    received_at=received_at,
                )
                headers = [("reason", rejection.message.encode()[:4000]), ("agent", b"ingest")]
                batch.produce(topics.TRACKING_DLQ, _dead_letter_json(body),
                              key=system.system_id.encode(), headers=headers)  # fmt: skip
        await batch.wait()
        return recorded


def _dead_letter_json(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, whatever its refused payload holds: what made an event malformed
    (NaN, a lone surrogate, nesting past the encoder's stack) must not make its dead letter
    unwritable, so such a payload is written as its ``repr`` (bounded) instead."""
    try:
        return jsontext.dumps(body)
    except (TypeError, ValueError, RecursionError):
        payload = body["event"]["payload"]
        try:
            shown = repr(payload)[:65536]
        except RecursionError:
            shown = "(nested too deeply to show)"
        event = {**body["event"], "payload": shown}
        return jsontext.dumps({**body, "event": event}, sort_keys=False)
