"""``AsyncProducer.deliveries``: a batch of records acknowledged once, on the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from connectors.exceptions import KafkaDeliveryError
from connectors.kafka import AsyncProducer, admin, end_offsets
from tests.support import Endpoints, read_topic

pytestmark = pytest.mark.integration


def fresh_topic(bootstrap: str) -> str:
    name = f"deliveries-{uuid.uuid4().hex[:8]}"
    client = admin(bootstrap)  # kept: the future fails if its client is collected first
    client.create_topics([NewTopic(name, 3, 1)])[name].result(timeout=30)
    return name


def test_wait_returns_once_every_record_is_on_the_broker(endpoints: Endpoints) -> None:
    topic = fresh_topic(endpoints.kafka_bootstrap)

    async def produce() -> int:
        producer = AsyncProducer(endpoints.kafka_bootstrap, client_id="test-deliveries")
        try:
            batch = producer.deliveries()
            for i in range(5000):
                batch.produce(topic, str(i).encode(), key=str(i % 7).encode())
            await batch.wait()
            empty = producer.deliveries()
            await asyncio.wait_for(empty.wait(), timeout=1)  # nothing produced: at once
            return len(batch)
        finally:
            producer.close()

    assert asyncio.run(produce()) == 5000
    # acked means written: the high watermarks count every record, right after wait()
    assert sum(end_offsets(endpoints.kafka_bootstrap, topic).values()) == 5000
    values = sorted(int(m.value()) for m in read_topic(endpoints.kafka_bootstrap, topic))
    assert values == list(range(5000))


def test_a_refused_record_fails_the_batch_after_every_report(endpoints: Endpoints) -> None:
    topic = fresh_topic(endpoints.kafka_bootstrap)

    async def produce() -> None:
        # the broker's message.max.bytes (1 MiB default) refuses the big record; the
        # producer may send it (its own limit is raised), so the refusal is the broker's
        producer = AsyncProducer(
            endpoints.kafka_bootstrap,
            client_id="test-deliveries",
            delivery_timeout_s=20,
            **{"message.max.bytes": 4_000_000, "compression.type": "none"},
        )
        try:
            batch = producer.deliveries()
            batch.produce(topic, b"small")
            batch.produce(topic, b"x" * 2_000_000)
            batch.produce(topic, b"small too")
            await batch.wait()
        finally:
            producer.close()

    with pytest.raises(KafkaDeliveryError, match=topic):
        asyncio.run(produce())
