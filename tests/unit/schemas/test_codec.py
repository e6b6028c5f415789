from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import parse_schema, to_parsing_canonical_form

from pipeline.domain import chirps, follows, tracking
from pipeline.domain.handling import Snapshot, handle
from pipeline.domain.identity import instructors, prospects, students
from pipeline.domain.identity.profile import Profile
from pipeline.domain.partners import EVENT_TYPES as PARTNER_EVENT_TYPES
from pipeline.domain.partners import PARTNER_SPEC
from pipeline.domain.partners import commands as pc
from pipeline.domain.users import EVENT_TYPES as USER_EVENT_TYPES
from pipeline.domain.users import USER_SPEC
from schemas.codec import HEADER_LENGTH, AvroCodec, fingerprint_of
from schemas.envelope import Envelope, event_id_for
from schemas.exceptions import (
    CorruptPayloadError,
    DecodeError,
    EncodeError,
    SchemaError,
    UnknownSchemaError,
)
from schemas.registry import SchemaRegistry, crc64_fingerprint
from tests.unit.domain.user_samples import each_command

REGISTRY = SchemaRegistry.load()
CODEC = AvroCodec(REGISTRY)
USER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
T0 = datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)
SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
KEY = "a" * 64
KEY2 = "b" * 64
# Aggregate (domain) events by type; TrackingEventRecorded has no aggregate class.
IDENTITY_EVENT_TYPES = {
    **prospects.EVENT_TYPES, **students.EVENT_TYPES, **instructors.EVENT_TYPES
}  # fmt: skip
EVENT_TYPES: dict[str, Any] = {
    **USER_EVENT_TYPES, **PARTNER_EVENT_TYPES, **chirps.EVENT_TYPES, **follows.EVENT_TYPES,
    **IDENTITY_EVENT_TYPES,
}  # fmt: skip
BORN_WITH_ACTOR = frozenset(
    [*chirps.EVENT_TYPES, *follows.EVENT_TYPES, *IDENTITY_EVENT_TYPES,
     "AllowedOriginsSet", "ReadTokenIssued", "ReadTokenRevoked"]
)  # fmt: skip
"""Event types whose first schema already had the actor (no v1 -> v2 upcast)."""
AGGREGATE_TYPES = {
    **dict.fromkeys(USER_EVENT_TYPES, "user"),
    **dict.fromkeys(PARTNER_EVENT_TYPES, "partner"),
    **dict.fromkeys(chirps.EVENT_TYPES, "chirp"),
    **dict.fromkeys(follows.EVENT_TYPES, "follow"),
    **dict.fromkeys(prospects.EVENT_TYPES, "prospect"),
    **dict.fromkeys(students.EVENT_TYPES, "student"),
    **dict.fromkeys(instructors.EVENT_TYPES, "instructor"),
    tracking.RECORDED_EVENT_TYPE: tracking.RECORDED_AGGREGATE_TYPE,
}
TRACKED = tracking.TrackedEvent(
    message_id="m-1",
    event="Order Completed",
    user_id=None,
    anonymous_id="anon-ü",
    timestamp=datetime(2024, 4, 30, 23, 59, 59, 999999, tzinfo=UTC),
    received_at=T0,
    properties={"total": 9.5, "items": [{"sku": "x"}]},
    context={},
    system_id=SYSTEM_ID,
    partner_id=USER_ID,
)

_PROFILE = Profile(
    "Ada", "Lovelace", "ada@example.org", "+15046218927", "fair", "met at a fair",
    other_names=("Augusta King",), other_emails=("ada@old.example",),
)  # fmt: skip
_IDENTITY_VALUES: dict[str, Any] = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
    "phone": "+15046218927", "source": None, "notes": "", "role": "student",
    "reason": "merged", "course": "CS-101", "profile": _PROFILE.to_data(),
    "converted": ["student"],
}  # fmt: skip


def _identity_data(cls: Any) -> dict[str, Any]:
    """Sample data of an identity event: ids are uuids, the rest from ``_IDENTITY_VALUES``."""
    import dataclasses

    return {
        f.name: _IDENTITY_VALUES.get(f.name, SYSTEM_ID if f.name.endswith("_id") else "x")
        for f in dataclasses.fields(cls)
    }


DATA: dict[str, dict[str, Any]] = {
    "UserCreated": {
        "user_id": USER_ID,
        "username": "jane_doe",
        "email": "jane@example.com",
        "first_name": "Jäne",
        "last_name": "Doe",
        "phone": "+15046218927",
        "role": "student",
        "password_hash": HASH,
    },
    "UserUpdated": {"first_name": "J", "last_name": "D", "phone": None, "role": "admin"},
    "AccountUpdated": {"email": None, "password_hash": HASH},
    "UserDeactivated": {"reason": "left"},
    "UserReactivated": {},
    "UserDeleted": {},
    "UserLastLoginUpdated": {"logged_in_at": datetime(2024, 5, 2, 1, 2, 3, 4, tzinfo=UTC)},
    "PartnerCreated": {
        "partner_id": USER_ID,
        "name": "Acme",
        "email": "ops@acme.example",
        "contact_person": None,
        "max_systems": 10,
    },
    "SystemAdded": {
        "system_id": SYSTEM_ID,
        "name": "Web",
        "description": "Ünïcode site",
        "key_hash": KEY,
        "key_prefix": "sk_live_AbCd",
        "unknown_events": "reject",
    },
    "ApiKeyRotated": {
        "system_id": SYSTEM_ID,
        "key_hash": KEY2,
        "key_prefix": "sk_live_EfGh",
        "previous_key_hash": KEY,
    },
    "SystemDeactivated": {"system_id": SYSTEM_ID, "key_hash": KEY},
    "SystemReactivated": {"system_id": SYSTEM_ID, "key_hash": KEY},
    "UnknownEventPolicySet": {"system_id": SYSTEM_ID, "policy": "accept"},
    "EventStructureDefined": {
        "system_id": SYSTEM_ID,
        "event_name": "Order Completed",
        "json_schema": '{"type": "object"}',
        "required": True,
        "structure_version": 2,
    },
    "EventStructureRemoved": {"system_id": SYSTEM_ID, "event_name": "Order Completed"},
    "AllowedOriginsSet": {"system_id": SYSTEM_ID, "origins": ["https://*.example.com"]},
    "ReadTokenIssued": {
        "token_id": SYSTEM_ID,
        "name": "Grafana",
        "token_hash": KEY2,
        "token_prefix": "rt_live_EfGh",
    },
    "ReadTokenRevoked": {"token_id": SYSTEM_ID, "token_hash": KEY2},
    "PartnerDeactivated": {},
    "ChirpPosted": {"chirp_id": SYSTEM_ID, "author_id": USER_ID, "text": "héllo 🐦"},
    "ChirpDeleted": {"chirp_id": SYSTEM_ID, "author_id": USER_ID},
    "UserFollowed": {"follower_id": USER_ID, "followee_id": SYSTEM_ID},
    **{et: _identity_data(cls) for et, cls in IDENTITY_EVENT_TYPES.items()},
    "UserUnfollowed": {"follower_id": USER_ID, "followee_id": SYSTEM_ID},
    "TrackingEventRecorded": tracking.recorded_data(
        TRACKED, schema_valid=False, structure_version=None
    ),
}


def envelope(event_type: str, **kw: Any) -> Envelope:
    fields: dict[str, Any] = {
        "event_id": event_id_for("cmd-1", 0),
        "event_type": event_type,
        "schema_version": REGISTRY.latest_version(event_type),
        "aggregate_type": AGGREGATE_TYPES[event_type],
        "aggregate_id": USER_ID,
        "aggregate_version": 7,
        "occurred_at": T0,
        "producer": "test",
        "correlation_id": "corr",
        "causation_id": "cmd-1",
        "actor": "0d6c2f0e-8a44-4e0b-9d59-6f1f6c1a2b3c",
        "data": DATA[event_type],
    }
    return Envelope(**(fields | kw))


def rabin64(data: bytes) -> int:
    """Reference CRC-64-AVRO from the Avro specification, independent of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_registry_knows_every_domain_event() -> None:
    assert REGISTRY.event_types() == sorted([*EVENT_TYPES, tracking.RECORDED_EVENT_TYPE])
    assert set(DATA) == set(REGISTRY.event_types()) == set(AGGREGATE_TYPES)
    assert REGISTRY.latest_version(tracking.RECORDED_EVENT_TYPE) == 2
    for event_type, cls in EVENT_TYPES.items():
        assert REGISTRY.latest_version(event_type) == cls.schema_version


def test_data_record_fields_match_event_dataclasses() -> None:
    import dataclasses

    for event_type, cls in EVENT_TYPES.items():
        schema = REGISTRY.writer(event_type, cls.schema_version)
        [data_field] = [f for f in schema["fields"] if f["name"] == "data"]
        names = [f["name"] for f in data_field["type"]["fields"]]
        assert names == [f.name for f in dataclasses.fields(cls)], event_type


def test_tracking_record_fields_match_recorded_data() -> None:
    schema = REGISTRY.writer(tracking.RECORDED_EVENT_TYPE, tracking.RECORDED_SCHEMA_VERSION)
    [data_field] = [f for f in schema["fields"] if f["name"] == "data"]
    names = [f["name"] for f in data_field["type"]["fields"]]
    assert names == list(DATA[tracking.RECORDED_EVENT_TYPE])


@pytest.mark.parametrize("structure_version", [None, 1])
def test_tracking_event_round_trip(structure_version: int | None) -> None:
    original = envelope(
        tracking.RECORDED_EVENT_TYPE,
        event_id=tracking.event_id_for(SYSTEM_ID, TRACKED.message_id),
        aggregate_id=SYSTEM_ID,
        aggregate_version=0,
        data=tracking.recorded_data(
            TRACKED, schema_valid=True, structure_version=structure_version
        ),
    )
    decoded = CODEC.decode(CODEC.encode(original))
    assert decoded == original
    assert json.loads(decoded.data["properties"]) == TRACKED.properties


@pytest.mark.parametrize("event_type", sorted(DATA))
def test_round_trip(event_type: str) -> None:
    original = envelope(event_type)
    payload = CODEC.encode(original)
    assert payload[:2] == b"\xc3\x01"
    assert fingerprint_of(payload) == REGISTRY.fingerprint(event_type, original.schema_version)
    decoded = CODEC.decode(payload)
    assert decoded == original
    assert decoded.occurred_at.tzinfo is not None
    assert decoded.occurred_at.utcoffset() == timedelta(0)
    assert isinstance(decoded.event_id, str)


def test_non_utc_occurred_at_decodes_as_same_instant_in_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    decoded = CODEC.decode(CODEC.encode(envelope("UserDeleted", occurred_at=local)))
    assert decoded.occurred_at == T0 and decoded.occurred_at.tzinfo is UTC


def test_fingerprint_is_little_endian_rabin_of_canonical_form() -> None:
    for event_type in REGISTRY.event_types():
        parsed = REGISTRY.writer(event_type, 1)
        canonical = to_parsing_canonical_form(parsed).encode()
        expected = struct.pack("<Q", rabin64(canonical))
        assert REGISTRY.fingerprint(event_type, 1) == expected
        assert REGISTRY.by_fingerprint(expected)[:2] == (event_type, 1)


def test_handled_commands_round_trip_through_avro() -> None:
    commands = [replace(c, command_id=f"c{i}") for i, c in enumerate(each_command(at=T0))]
    snapshot = Snapshot(state=None)
    for command in commands:
        outcome = handle(USER_SPEC, snapshot, command, producer="p", window=5)
        snapshot = outcome.snapshot
        [env] = outcome.envelopes
        payload = CODEC.encode(env)
        assert CODEC.decode(payload) == env
        assert CODEC.encode(env) == payload  # deterministic bytes


def test_handled_partner_commands_round_trip_through_avro() -> None:
    def base(command_id: str) -> dict[str, Any]:
        return {"command_id": command_id, "aggregate_id": USER_ID, "issued_at": T0}

    commands: list[Any] = [
        pc.CreatePartner(**base("p0"), name="Acme", email="ops@acme.example"),
        pc.AddSystem(
            **base("p1"), system_id=SYSTEM_ID, name="Web", key_hash=KEY, key_prefix="sk_live_Ab12"
        ),
        pc.RotateApiKey(
            **base("p2"), system_id=SYSTEM_ID, key_hash=KEY2, key_prefix="sk_live_Cd34"
        ),
        pc.SetUnknownEventPolicy(**base("p3"), system_id=SYSTEM_ID, policy="reject"),
        pc.DefineEventStructure(
            **base("p4"), system_id=SYSTEM_ID, event_name="A", json_schema="{}", required=True
        ),
        pc.RemoveEventStructure(**base("p5"), system_id=SYSTEM_ID, event_name="A"),
        pc.SetAllowedOrigins(**base("p9"), system_id=SYSTEM_ID, origins=["http://localhost:3000"]),
        pc.IssueReadToken(
            **base("p10"), token_id=SYSTEM_ID, name="t", token_hash=KEY, token_prefix="rt_live_Ab"
        ),
        pc.RevokeReadToken(**base("p11"), token_id=SYSTEM_ID),
        pc.DeactivateSystem(**base("p6"), system_id=SYSTEM_ID),
        pc.ReactivateSystem(**base("p7"), system_id=SYSTEM_ID),
        pc.DeactivatePartner(**base("p8")),
    ]
    snapshot = Snapshot(state=None)
    seen: set[str] = set()
    for command in commands:
        outcome = handle(PARTNER_SPEC, snapshot, command, producer="p", window=5)
        assert outcome.result.status == "accepted", outcome.result
        snapshot = outcome.snapshot
        for env in outcome.envelopes:
            seen.add(env.event_type)
            payload = CODEC.encode(env)
            assert CODEC.decode(payload) == env
            assert CODEC.encode(env) == payload
    assert seen == set(PARTNER_EVENT_TYPES)


class TestDecodeErrors:
    def test_unknown_fingerprint(self) -> None:
        payload = bytearray(CODEC.encode(envelope("UserDeleted")))
        payload[2:10] = b"\x00" * 8
        with pytest.raises(UnknownSchemaError, match="0000000000000000"):
            CODEC.decode(bytes(payload))

    @pytest.mark.parametrize("length", [0, 1, 3, 9])
    def test_shorter_than_header(self, length: int) -> None:
        payload = CODEC.encode(envelope("UserCreated"))[:length]
        with pytest.raises(CorruptPayloadError, match=f"payload is {length} bytes"):
            CODEC.decode(payload)
        assert fingerprint_of(payload) is None

    def test_bad_magic(self) -> None:
        payload = b"\x00\x01" + CODEC.encode(envelope("UserCreated"))[2:]
        with pytest.raises(CorruptPayloadError, match="magic"):
            CODEC.decode(payload)
        assert fingerprint_of(payload) is None

    def test_truncated_body(self) -> None:
        payload = CODEC.encode(envelope("UserCreated"))
        for cut in (HEADER_LENGTH, HEADER_LENGTH + 5, len(payload) - 1):
            with pytest.raises(CorruptPayloadError):
                CODEC.decode(payload[:cut])

    def test_trailing_bytes(self) -> None:
        with pytest.raises(CorruptPayloadError, match="trailing"):
            CODEC.decode(CODEC.encode(envelope("UserDeleted")) + b"\x00")

    def test_garbage_body(self) -> None:
        header = CODEC.encode(envelope("UserCreated"))[:HEADER_LENGTH]
        with pytest.raises(CorruptPayloadError):
            CODEC.decode(header + b"\xff" * 40)

    def test_hierarchy(self) -> None:
        assert issubclass(CorruptPayloadError, DecodeError)
        assert issubclass(UnknownSchemaError, DecodeError)
        assert issubclass(DecodeError, SchemaError)


class TestEncodeErrors:
    def test_unknown_event_type_or_version(self) -> None:
        with pytest.raises(UnknownSchemaError):
            CODEC.encode(replace(envelope("UserDeleted"), event_type="UserExploded"))
        with pytest.raises(UnknownSchemaError):
            CODEC.encode(envelope("UserDeleted", schema_version=3))

    def test_wrong_data(self) -> None:
        with pytest.raises(EncodeError):
            CODEC.encode(envelope("UserUpdated", data={"first_name": "only"}))
        with pytest.raises(EncodeError):
            CODEC.encode(envelope("UserDeleted", data={"unexpected": 1}))

    def test_naive_datetimes(self) -> None:
        with pytest.raises(EncodeError):
            CODEC.encode(envelope("UserDeleted", occurred_at=datetime(2024, 1, 1)))
        naive_login = {"logged_in_at": datetime(2024, 1, 1)}
        with pytest.raises(EncodeError):
            CODEC.encode(envelope("UserLastLoginUpdated", data=naive_login))


def test_registry_rejects_badly_named_files(tmp_path: Path) -> None:
    (tmp_path / "UserCreated.avsc").write_text("{}")
    with pytest.raises(SchemaError, match="must be named"):
        SchemaRegistry.load(tmp_path)


def test_registry_rejects_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "Thing.v1.avsc").write_text("{nope")
    with pytest.raises(SchemaError, match="cannot load"):
        SchemaRegistry.load(tmp_path)


def test_registry_rejects_non_envelope_record(tmp_path: Path) -> None:
    schema = {"type": "record", "name": "T", "fields": [{"name": "x", "type": "int"}]}
    (tmp_path / "Thing.v1.avsc").write_text(json.dumps(schema))
    with pytest.raises(SchemaError, match="must be a record"):
        SchemaRegistry.load(tmp_path)


def test_crc64_fingerprint_helper_matches_reference() -> None:
    parsed = parse_schema(
        {"type": "record", "name": "a.B", "fields": [{"name": "x", "type": "long"}]}
    )
    canonical = to_parsing_canonical_form(parsed).encode()
    assert crc64_fingerprint(parsed) == struct.pack("<Q", rabin64(canonical))


@pytest.mark.parametrize("event_type", sorted(set(DATA) - BORN_WITH_ACTOR))
def test_a_v1_event_written_before_actors_reads_as_v2_with_its_actor(event_type: str) -> None:
    """v1 envelopes had no actor: the upcaster says "unknown", or the sending system for
    tracking events (its aggregate id). The data passes through, and v1 tracking data reads
    as a track call (v2 added the Segment call fields)."""
    [v1_data] = [f for f in REGISTRY.writer(event_type, 1)["fields"] if f["name"] == "data"]
    v1 = {f["name"]: DATA[event_type][f["name"]] for f in v1_data["type"]["fields"]}
    old = envelope(event_type, schema_version=1, actor="dropped by the v1 layout", data=v1)
    decoded = CODEC.decode(CODEC.encode(old))
    assert decoded.schema_version == 2
    assert decoded.data == CODEC.decode(CODEC.encode(envelope(event_type))).data
    expected = f"sdk:{USER_ID}" if event_type == tracking.RECORDED_EVENT_TYPE else "unknown"
    assert decoded.actor == expected
