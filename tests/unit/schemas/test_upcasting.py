from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import AvroCodec
from schemas.envelope import Envelope
from schemas.exceptions import DecodeError, SchemaError
from schemas.registry import ENVELOPE_FIELDS, SchemaRegistry
from schemas.upcasting import DEFAULT_UPCASTERS, UNKNOWN_ACTOR, Upcasters

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def write_schema(root: Path, version: int, data_fields: list[dict[str, Any]]) -> None:
    envelope_types: dict[str, Any] = {
        "event_id": {"type": "string", "logicalType": "uuid"},
        "schema_version": "int",
        "aggregate_version": "long",
        "occurred_at": {"type": "long", "logicalType": "timestamp-micros"},
    }
    fields: list[dict[str, Any]] = [
        {"name": name, "type": envelope_types.get(name, "string")} for name in ENVELOPE_FIELDS[:-1]
    ]
    fields.append(
        {
            "name": "data",
            "type": {
                "type": "record",
                "name": f"ThingHappenedDataV{version}",
                "fields": data_fields,
            },
        }
    )
    schema = {"type": "record", "name": f"test.ThingHappenedV{version}", "fields": fields}
    (root / f"ThingHappened.v{version}.avsc").write_text(json.dumps(schema))


@pytest.fixture
def registry(tmp_path: Path) -> SchemaRegistry:
    write_schema(tmp_path, 1, [{"name": "name", "type": "string"}])
    write_schema(
        tmp_path,
        2,
        [{"name": "first_name", "type": "string"}, {"name": "last_name", "type": "string"}],
    )
    return SchemaRegistry.load(tmp_path)


def thing_v1() -> Envelope:
    return Envelope(
        event_id="6f3d2a1e-9b4c-5e8f-a7d6-3c2b1a0f9e8d",
        event_type="ThingHappened",
        schema_version=1,
        aggregate_type="thing",
        aggregate_id="t-1",
        aggregate_version=1,
        occurred_at=T0,
        producer="old-release",
        correlation_id="c",
        causation_id="c",
        actor="u-1",
        data={"name": "Ada Lovelace"},
    )


def split_name(record: dict[str, Any]) -> dict[str, Any]:
    first, _, last = record["data"]["name"].partition(" ")
    return {**record, "data": {"first_name": first, "last_name": last}}


def test_registry_versions(registry: SchemaRegistry) -> None:
    assert registry.event_types() == ["ThingHappened"]
    assert registry.latest_version("ThingHappened") == 2
    assert registry.fingerprint("ThingHappened", 1) != registry.fingerprint("ThingHappened", 2)


def test_v1_payload_is_upcast_to_v2(registry: SchemaRegistry) -> None:
    upcasters = Upcasters()

    @upcasters.upcaster("ThingHappened", from_version=1)
    def _(record: dict[str, Any]) -> dict[str, Any]:
        return split_name(record)

    codec = AvroCodec(registry, upcasters)
    decoded = codec.decode(codec.encode(thing_v1()))
    assert decoded.schema_version == 2
    assert decoded.data == {"first_name": "Ada", "last_name": "Lovelace"}
    assert decoded.producer == "old-release"


def test_v2_payload_is_not_upcast(registry: SchemaRegistry) -> None:
    upcasters = Upcasters()
    upcasters.register("ThingHappened", 1, split_name)
    codec = AvroCodec(registry, upcasters)
    v2 = Envelope(
        **{
            **{f: getattr(thing_v1(), f) for f in ENVELOPE_FIELDS},
            "schema_version": 2,
            "data": {"first_name": "Grace", "last_name": "Hopper"},
        }
    )
    assert codec.decode(codec.encode(v2)) == v2


def test_missing_upcaster_is_a_decode_error(registry: SchemaRegistry) -> None:
    codec = AvroCodec(registry, Upcasters())
    with pytest.raises(DecodeError, match="upcaster is missing"):
        codec.decode(codec.encode(thing_v1()))


def test_chain_applies_in_order() -> None:
    upcasters = Upcasters()
    upcasters.register("E", 1, lambda r: {**r, "steps": [*r["steps"], 1]})
    upcasters.register("E", 2, lambda r: {**r, "steps": [*r["steps"], 2]})
    assert upcasters.upcast("E", 1, {"steps": []}) == (3, {"steps": [1, 2], "schema_version": 3})
    assert upcasters.upcast("E", 2, {"steps": []}) == (3, {"steps": [2], "schema_version": 3})
    assert upcasters.upcast("E", 3, {"steps": []}) == (3, {"steps": []})
    assert upcasters.upcast("Other", 1, {"x": 1}) == (1, {"x": 1})


def test_duplicate_and_invalid_registration() -> None:
    upcasters = Upcasters()
    upcasters.register("E", 1, split_name)
    with pytest.raises(SchemaError):
        upcasters.register("E", 1, split_name)
    with pytest.raises(SchemaError):
        upcasters.register("E", 0, split_name)


def test_default_upcasters_give_v1_events_an_actor() -> None:
    record = {"schema_version": 1, "aggregate_id": "sys-1", "data": {"a": 1}}
    assert DEFAULT_UPCASTERS.upcast("UserCreated", 1, record) == (
        2,
        {**record, "schema_version": 2, "actor": UNKNOWN_ACTOR},
    )
    assert DEFAULT_UPCASTERS.upcast("TrackingEventRecorded", 1, record)[1]["actor"] == ("sdk:sys-1")
    assert DEFAULT_UPCASTERS.upcast("UserCreated", 2, record) == (2, record)
