from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.domain.partners.aggregate import (
    EventStructure,
    Partner,
    PartnerStatus,
    PartnerSystem,
    SystemStatus,
    UnknownEventPolicy,
    decide,
)
from pipeline.domain.partners.commands import (
    AddSystem,
    CreatePartner,
    DeactivatePartner,
    DeactivateSystem,
    DefineEventStructure,
    ReactivateSystem,
    RemoveEventStructure,
    RotateApiKey,
    SetUnknownEventPolicy,
)
from pipeline.domain.partners.events import (
    ApiKeyRotated,
    EventStructureDefined,
    EventStructureRemoved,
    PartnerCreated,
    PartnerDeactivated,
    SystemAdded,
    SystemDeactivated,
    SystemReactivated,
    UnknownEventPolicySet,
)
from pipeline.domain.partners.rules import JSON_SCHEMA_MAX_BYTES
from pipeline.domain.results import Rejection, RejectionReason

PARTNER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
OTHER_ID = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"
KEY1 = hashlib.sha256(b"sk_live_first").hexdigest()
KEY2 = hashlib.sha256(b"sk_live_second").hexdigest()
KEY3 = hashlib.sha256(b"sk_live_third").hexdigest()
T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
SCHEMA = json.dumps({"type": "object", "properties": {"total": {"type": "number"}}})


def base(**kw: Any) -> dict[str, Any]:
    return {"command_id": "cmd-1", "aggregate_id": PARTNER_ID, "issued_at": T0, **kw}


def create(**kw: Any) -> CreatePartner:
    fields = {"name": " Acme ", "email": " Ops@Acme.example ", "contact_person": " Ann "}
    return CreatePartner(**base(**(fields | kw)))


def add(**kw: Any) -> AddSystem:
    fields = {
        "system_id": OTHER_ID,
        "name": "Mobile",
        "description": " iOS app ",
        "key_hash": KEY2,
        "key_prefix": "sk_live_Mob1",
    }
    return AddSystem(**base(**(fields | kw)))


def define(**kw: Any) -> DefineEventStructure:
    fields = {"system_id": SYSTEM_ID, "event_name": " Order Completed ", "json_schema": SCHEMA}
    return DefineEventStructure(**base(**(fields | {"required": True} | kw)))


def system(**kw: Any) -> PartnerSystem:
    fields: dict[str, Any] = {
        "system_id": SYSTEM_ID,
        "name": "Web",
        "description": None,
        "key_hash": KEY1,
        "key_prefix": "sk_live_Web1",
        "status": SystemStatus.ACTIVE,
        "unknown_events": UnknownEventPolicy.ACCEPT,
    }
    return PartnerSystem(**(fields | kw))


def partner(*systems: PartnerSystem, **kw: Any) -> Partner:
    fields: dict[str, Any] = {
        "partner_id": PARTNER_ID,
        "name": "Acme",
        "email": "ops@acme.example",
        "contact_person": None,
        "max_systems": 10,
        "status": PartnerStatus.ACTIVE,
        "systems": {s.system_id: s for s in (systems or (system(),))},
        "created_at": T0,
        "updated_at": T0,
    }
    return Partner(**(fields | kw))


def rejected(result: object, reason: RejectionReason, field: str | None = None) -> Rejection:
    assert isinstance(result, Rejection), result
    assert (result.reason, result.field) == (reason, field), result
    return result


EVERY_NON_CREATE = [
    add(),
    RotateApiKey(**base(system_id=SYSTEM_ID, key_hash=KEY2, key_prefix="sk_live_New1")),
    DeactivateSystem(**base(system_id=SYSTEM_ID)),
    ReactivateSystem(**base(system_id=SYSTEM_ID)),
    SetUnknownEventPolicy(**base(system_id=SYSTEM_ID, policy="reject")),
    define(),
    RemoveEventStructure(**base(system_id=SYSTEM_ID, event_name="x")),
    DeactivatePartner(**base()),
]


class TestCreatePartner:
    def test_emits_normalised_partner_created(self) -> None:
        assert decide(None, create()) == [
            PartnerCreated(
                partner_id=PARTNER_ID,
                name="Acme",
                email="ops@acme.example",
                contact_person="Ann",
                max_systems=10,
            )
        ]

    def test_blank_contact_person_is_none(self) -> None:
        [event] = decide(None, create(contact_person="  ", max_systems=3))  # type: ignore[misc]
        assert (event.contact_person, event.max_systems) == (None, 3)

    def test_on_existing_partner_already_exists(self) -> None:
        for status in PartnerStatus:
            rejected(decide(partner(status=status), create()), RejectionReason.ALREADY_EXISTS)

    @pytest.mark.parametrize(
        ("field", "kw"),
        [
            ("name", {"name": "  "}),
            ("name", {"name": "x" * 201}),
            ("email", {"email": "not-an-email"}),
            ("contact_person", {"contact_person": "x" * 201}),
            ("max_systems", {"max_systems": 0}),
            ("max_systems", {"max_systems": 101}),
            ("max_systems", {"max_systems": True}),
            ("aggregate_id", {"aggregate_id": PARTNER_ID.upper()}),
            ("aggregate_id", {"aggregate_id": "nope"}),
        ],
    )
    def test_invalid_values(self, field: str, kw: dict[str, Any]) -> None:
        rejected(decide(None, create(**kw)), RejectionReason.INVALID, field)


@pytest.mark.parametrize("command", EVERY_NON_CREATE, ids=lambda c: c.type)
def test_every_other_command_on_none_is_not_found(command: Any) -> None:
    rejected(decide(None, command), RejectionReason.NOT_FOUND)


@pytest.mark.parametrize("command", EVERY_NON_CREATE, ids=lambda c: c.type)
def test_every_command_on_deactivated_partner_is_invalid_state(command: Any) -> None:
    result = rejected(
        decide(partner(status=PartnerStatus.INACTIVE), command), RejectionReason.INVALID_STATE
    )
    assert result.message == "partner is deactivated"


class TestAddSystem:
    def test_emits_system_added(self) -> None:
        assert decide(partner(), add(unknown_events="reject")) == [
            SystemAdded(
                system_id=OTHER_ID,
                name="Mobile",
                description="iOS app",
                key_hash=KEY2,
                key_prefix="sk_live_Mob1",
                unknown_events="reject",
            )
        ]

    def test_limit(self) -> None:
        result = rejected(
            decide(partner(max_systems=1), add()), RejectionReason.INVALID_STATE, "max_systems"
        )
        assert "1" in result.message and "max_systems" in result.message
        assert isinstance(decide(partner(max_systems=2), add()), list)

    def test_duplicate_id_name_and_key(self) -> None:
        state = partner()
        rejected(
            decide(state, add(system_id=SYSTEM_ID)), RejectionReason.ALREADY_EXISTS, "system_id"
        )
        rejected(decide(state, add(name=" wEB ")), RejectionReason.ALREADY_EXISTS, "name")
        rejected(decide(state, add(key_hash=KEY1)), RejectionReason.ALREADY_EXISTS, "key_hash")

    @pytest.mark.parametrize(
        ("field", "kw"),
        [
            ("system_id", {"system_id": OTHER_ID.upper()}),
            ("system_id", {"system_id": "sys-1"}),
            ("name", {"name": ""}),
            ("name", {"name": "x" * 101}),
            ("description", {"description": "x" * 1001}),
            ("key_hash", {"key_hash": KEY2.upper()}),
            ("key_hash", {"key_hash": KEY2[:-1]}),
            ("key_prefix", {"key_prefix": "sk_live"}),
            ("key_prefix", {"key_prefix": "sk_live_AbCd_EfGh1"}),
            ("key_prefix", {"key_prefix": "sk live AbCd"}),
            ("unknown_events", {"unknown_events": "drop"}),
        ],
    )
    def test_invalid_values(self, field: str, kw: dict[str, Any]) -> None:
        rejected(decide(partner(), add(**kw)), RejectionReason.INVALID, field)


class TestSystemCommands:
    def test_unknown_system_is_not_found(self) -> None:
        commands = [
            c for c in EVERY_NON_CREATE if hasattr(c, "system_id") and c.type != "AddSystem"
        ]
        assert len(commands) == 6
        for command in commands:
            result = decide(partner(), replace(command, system_id=OTHER_ID))
            rejected(result, RejectionReason.NOT_FOUND, "system_id")

    def test_rotate(self) -> None:
        command = RotateApiKey(
            **base(system_id=SYSTEM_ID, key_hash=KEY2, key_prefix="sk_live_New1")
        )
        assert decide(partner(), command) == [
            ApiKeyRotated(
                system_id=SYSTEM_ID,
                key_hash=KEY2,
                key_prefix="sk_live_New1",
                previous_key_hash=KEY1,
            )
        ]
        inactive = partner(system(status=SystemStatus.INACTIVE))
        rejected(decide(inactive, command), RejectionReason.INVALID_STATE)
        rejected(
            decide(partner(), replace(command, key_hash=KEY1)), RejectionReason.INVALID, "key_hash"
        )
        rejected(
            decide(partner(), replace(command, key_hash="x")), RejectionReason.INVALID, "key_hash"
        )
        rejected(
            decide(partner(), replace(command, key_prefix="")),
            RejectionReason.INVALID,
            "key_prefix",
        )
        two = partner(system(), system(system_id=OTHER_ID, name="B", key_hash=KEY2))
        rejected(decide(two, command), RejectionReason.ALREADY_EXISTS, "key_hash")

    def test_deactivate_and_reactivate(self) -> None:
        deactivate = DeactivateSystem(**base(system_id=SYSTEM_ID))
        reactivate = ReactivateSystem(**base(system_id=SYSTEM_ID))
        inactive = partner(system(status=SystemStatus.INACTIVE))
        assert decide(partner(), deactivate) == [
            SystemDeactivated(system_id=SYSTEM_ID, key_hash=KEY1)
        ]
        assert decide(inactive, reactivate) == [
            SystemReactivated(system_id=SYSTEM_ID, key_hash=KEY1)
        ]
        rejected(decide(inactive, deactivate), RejectionReason.INVALID_STATE)
        rejected(decide(partner(), reactivate), RejectionReason.INVALID_STATE)

    def test_set_unknown_event_policy(self) -> None:
        command = SetUnknownEventPolicy(**base(system_id=SYSTEM_ID, policy="reject"))
        assert decide(partner(), command) == [
            UnknownEventPolicySet(system_id=SYSTEM_ID, policy="reject")
        ]
        assert decide(partner(), replace(command, policy="accept")) == []  # already accept
        inactive = partner(system(status=SystemStatus.INACTIVE))
        assert len(decide(inactive, command)) == 1  # type: ignore[arg-type]
        rejected(
            decide(partner(), replace(command, policy="maybe")), RejectionReason.INVALID, "policy"
        )


INVALID_SCHEMAS: list[Any] = [
    "{not json",
    "[]",
    "true",
    '{"type": "nope"}',
    '{"properties": {"a": {"minimum": "1"}}}',
    '{"type": "string", "pattern": "("}',
    '{"maximum": NaN}',
    '{"$schema": "https://example.com/mine"}',
    '{"$schema": 3}',
    '{"$ref": "https://example.com/s.json"}',
    '{"items": [{"$ref": "other.json#/a"}]}',
    '{"$dynamicRef": "file:///etc/passwd"}',
    "[" * 5000 + "]" * 5000,
    '{"not":' * 500 + "{}" + "}" * 500,
    json.dumps({"description": "x" * JSON_SCHEMA_MAX_BYTES}),
    {"type": "object"},
    # jsonschema accepts these; the pipeline's compiler (fastjsonschema) cannot
    # apply them: a self-reference without end, a dangling one, draft-03 required
    '{"$ref": "#/definitions/a", "definitions": {"a": {"$ref": "#/definitions/a"}}}',
    '{"$ref": "#/nope"}',
    '{"type": "object", "required": true}',
]
"""``json_schema`` values ``DefineEventStructure`` refuses."""


class TestDefineEventStructure:
    def test_first_definition_is_version_1(self) -> None:
        assert decide(partner(), define()) == [
            EventStructureDefined(
                system_id=SYSTEM_ID,
                event_name="Order Completed",
                json_schema=SCHEMA,
                required=True,
                structure_version=1,
            )
        ]

    def test_redefinition_bumps_version_and_identical_is_noop(self) -> None:
        current = EventStructure(json_schema=SCHEMA, required=True, version=2)
        state = partner(
            system(
                structures={"Order Completed": current}, structure_versions={"Order Completed": 2}
            )
        )
        assert decide(state, define()) == []
        [event] = decide(state, define(required=False))  # type: ignore[misc]
        assert (event.structure_version, event.required) == (3, False)

    def test_version_continues_after_removal(self) -> None:
        state = partner(system(structure_versions={"Order Completed": 4}))
        [event] = decide(state, define())  # type: ignore[misc]
        assert event.structure_version == 5

    def test_inactive_system(self) -> None:
        inactive = partner(system(status=SystemStatus.INACTIVE))
        rejected(decide(inactive, define()), RejectionReason.INVALID_STATE)

    def test_accepts_declared_dialects(self) -> None:
        for dialect in (
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2020-12/schema",
        ):
            text = json.dumps({"$schema": dialect, "type": "object", "required": ["a"]})
            assert isinstance(decide(partner(), define(json_schema=text)), list)

    @pytest.mark.parametrize(
        ("field", "kw"),
        [
            ("event_name", {"event_name": "   "}),
            ("event_name", {"event_name": "x" * 101}),
            ("event_name", {"event_name": "order/completed"}),
            ("event_name", {"event_name": 7}),
            *[("json_schema", {"json_schema": text}) for text in INVALID_SCHEMAS],
            ("required", {"required": "yes"}),
        ],
    )
    def test_invalid_values(self, field: str, kw: dict[str, Any]) -> None:
        rejected(decide(partner(), define(**kw)), RejectionReason.INVALID, field)

    def test_local_refs_are_allowed(self) -> None:
        text = json.dumps(
            {
                "$defs": {"money": {"type": "number", "minimum": 0}},
                "type": "object",
                "properties": {"total": {"$ref": "#/$defs/money"}},
            }
        )
        assert isinstance(decide(partner(), define(json_schema=text)), list)

    def test_size_limit_is_inclusive(self) -> None:
        padding = JSON_SCHEMA_MAX_BYTES - len(json.dumps({"description": ""}))
        text = json.dumps({"description": "x" * padding})
        assert len(text.encode()) == JSON_SCHEMA_MAX_BYTES
        assert isinstance(decide(partner(), define(json_schema=text)), list)


class TestRemoveEventStructure:
    def test_remove(self) -> None:
        structure = EventStructure(json_schema=SCHEMA, required=False, version=1)
        state = partner(system(status=SystemStatus.INACTIVE, structures={"Signup": structure}))
        command = RemoveEventStructure(**base(system_id=SYSTEM_ID, event_name=" Signup "))
        assert decide(state, command) == [
            EventStructureRemoved(system_id=SYSTEM_ID, event_name="Signup")
        ]
        missing = replace(command, event_name="Login")
        rejected(decide(state, missing), RejectionReason.NOT_FOUND, "event_name")
        rejected(
            decide(state, replace(command, event_name="")), RejectionReason.INVALID, "event_name"
        )


def test_deactivate_partner_deactivates_active_systems_first() -> None:
    state = partner(
        system(),
        system(system_id=OTHER_ID, name="Old", key_hash=KEY2, status=SystemStatus.INACTIVE),
        system(system_id=PARTNER_ID, name="New", key_hash=KEY3),
    )
    assert decide(state, DeactivatePartner(**base())) == [
        SystemDeactivated(system_id=SYSTEM_ID, key_hash=KEY1),
        SystemDeactivated(system_id=PARTNER_ID, key_hash=KEY3),
        PartnerDeactivated(),
    ]
