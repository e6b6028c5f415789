"""Avro container files made of single-object payloads (``schemas/container.py``): what
fastavro's own reader makes of them is the records the payloads hold, with their
positions appended."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro

from connectors.batch import Record
from schemas.codec import AvroCodec
from schemas.container import POSITION_FIELDS, PositionedContainer
from schemas.envelope import Envelope
from schemas.registry import SchemaRegistry

REGISTRY = SchemaRegistry.load()
CODEC = AvroCodec(REGISTRY)
EVENT = "TrackingEventRecorded"
NEWEST = REGISTRY.latest_version(EVENT)


def envelope(i: int, user_id: str | None) -> Envelope:
    when = datetime(2026, 12, 2, 10, i, tzinfo=UTC)
    data = {
        "partner_id": "p", "system_id": "s", "type": "track", "event": f"e{i}",
        "message_id": f"m{i}", "user_id": user_id, "anonymous_id": None, "group_id": None,
        "previous_id": None, "category": None, "timestamp": when, "original_timestamp": when,
        "received_at": when, "properties": "{}", "traits": "{}", "context": "{}",
        "schema_valid": True, "structure_version": i,
    }  # fmt: skip
    return Envelope(
        event_id=f"00000000-0000-4000-8000-{i:012d}", event_type=EVENT, schema_version=NEWEST,
        aggregate_type="tracking", aggregate_id="s", aggregate_version=0, occurred_at=when,
        producer="test", correlation_id=f"m{i}", causation_id=f"m{i}", actor="sdk:s", data=data,
    )  # fmt: skip


def test_a_container_reads_back_as_the_records_and_their_positions() -> None:
    envelopes = [envelope(i, None if i % 2 else f"u{i}") for i in range(5)]
    positions = [("tracking.events", i % 2, 10**12 + i) for i in range(5)]
    container = PositionedContainer(REGISTRY.source(EVENT, NEWEST))
    data = container.file(
        Record(topic, partition, offset, None, CODEC.encode(e), ())
        for e, (topic, partition, offset) in zip(envelopes, positions, strict=True)
    )
    read = list(fastavro.reader(io.BytesIO(data)))
    assert len(read) == 5
    for record, env, (topic, partition, offset) in zip(read, envelopes, positions, strict=True):
        assert (record["kafka_topic"], record["kafka_partition"], record["kafka_offset"]) == (
            topic, partition, offset,
        )  # fmt: skip
        assert str(record["event_id"]) == env.event_id
        assert record["data"]["user_id"] == env.data["user_id"]
        assert record["data"]["structure_version"] == env.data["structure_version"]
    assert [f["name"] for f in POSITION_FIELDS] == ["kafka_topic", "kafka_partition",
                                                    "kafka_offset"]  # fmt: skip


def test_an_empty_container_has_no_records() -> None:
    container = PositionedContainer(REGISTRY.source(EVENT, NEWEST))
    assert list(fastavro.reader(io.BytesIO(container.file([])))) == []
