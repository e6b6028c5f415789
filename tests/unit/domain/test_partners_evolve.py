from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue, UnknownEventType
from pipeline.domain.handling import Snapshot, handle, snapshot_from_dict, snapshot_to_dict
from pipeline.domain.partners import (
    COMMAND_TYPES,
    EVENT_TYPES,
    PARTNER_SPEC,
    EventStructure,
    Partner,
    PartnerCommand,
    PartnerStatus,
    PartnerSystem,
    SystemStatus,
    UnknownEventPolicy,
    evolve,
    from_data,
    state_from_dict,
    state_to_dict,
    to_data,
)
from pipeline.domain.partners.commands import (
    AddSystem,
    CreatePartner,
    DeactivatePartner,
    DeactivateSystem,
    DefineEventStructure,
    IssueReadToken,
    ReactivateSystem,
    RemoveEventStructure,
    RevokeReadToken,
    RotateApiKey,
    SetAllowedOrigins,
    SetUnknownEventPolicy,
)
from pipeline.domain.partners.events import (
    AllowedOriginsSet,
    ApiKeyRotated,
    EventStructureDefined,
    EventStructureRemoved,
    PartnerCreated,
    PartnerDeactivated,
    ReadTokenIssued,
    ReadTokenRevoked,
    SystemAdded,
    SystemDeactivated,
    SystemReactivated,
    UnknownEventPolicySet,
)
from pipeline.domain.users.commands import Command as UserModuleCommand

PARTNER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
KEY1 = hashlib.sha256(b"one").hexdigest()
KEY2 = hashlib.sha256(b"two").hexdigest()
TOKEN = hashlib.sha256(b"token").hexdigest()
TOKEN_ID = "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
SCHEMA = '{"type": "object"}'

CREATED = PartnerCreated(
    partner_id=PARTNER_ID,
    name="Acme",
    email="ops@acme.example",
    contact_person=None,
    max_systems=5,
)
ADDED = SystemAdded(
    system_id=SYSTEM_ID,
    name="Web",
    description="site",
    key_hash=KEY1,
    key_prefix="sk_live_Web1",
    unknown_events="accept",
)
DEFINED = EventStructureDefined(
    system_id=SYSTEM_ID, event_name="Signup", json_schema=SCHEMA, required=True, structure_version=1
)
ONE_OF_EACH: list[Any] = [
    CREATED,
    ADDED,
    ApiKeyRotated(
        system_id=SYSTEM_ID, key_hash=KEY2, key_prefix="sk_live_Web2", previous_key_hash=KEY1
    ),
    UnknownEventPolicySet(system_id=SYSTEM_ID, policy="reject"),
    DEFINED,
    replace(DEFINED, required=False, structure_version=2),
    EventStructureRemoved(system_id=SYSTEM_ID, event_name="Signup"),
    SystemDeactivated(system_id=SYSTEM_ID, key_hash=KEY2),
    SystemReactivated(system_id=SYSTEM_ID, key_hash=KEY2),
    SystemDeactivated(system_id=SYSTEM_ID, key_hash=KEY2),
    AllowedOriginsSet(system_id=SYSTEM_ID, origins=("https://shop.example.com",)),
    ReadTokenIssued(
        token_id=TOKEN_ID, name="dashboard", token_hash=TOKEN, token_prefix="rt_live_Abcd"
    ),
    ReadTokenRevoked(token_id=TOKEN_ID, token_hash=TOKEN),
    PartnerDeactivated(),
]


def fold(events: list[Any], at: datetime = T0) -> Partner:
    state: Partner | None = None
    for event in events:
        state = evolve(state, event, at)
    assert state is not None
    return state


class TestEvolve:
    def test_created_and_added(self) -> None:
        state = evolve(evolve(None, CREATED, T0), ADDED, T1)
        assert state == Partner(
            partner_id=PARTNER_ID,
            name="Acme",
            email="ops@acme.example",
            contact_person=None,
            max_systems=5,
            status=PartnerStatus.ACTIVE,
            systems={
                SYSTEM_ID: PartnerSystem(
                    system_id=SYSTEM_ID,
                    name="Web",
                    description="site",
                    key_hash=KEY1,
                    key_prefix="sk_live_Web1",
                    status=SystemStatus.ACTIVE,
                    unknown_events=UnknownEventPolicy.ACCEPT,
                )
            },
            created_at=T0,
            updated_at=T1,
        )

    def test_every_event_applies(self) -> None:
        states = [fold(ONE_OF_EACH[: i + 1]) for i in range(len(ONE_OF_EACH))]
        rotated, policy, defined, redefined, removed = (s.systems[SYSTEM_ID] for s in states[2:7])
        assert (rotated.key_hash, rotated.key_prefix) == (KEY2, "sk_live_Web2")
        assert policy.unknown_events is UnknownEventPolicy.REJECT
        assert defined.structures == {
            "Signup": EventStructure(json_schema=SCHEMA, required=True, version=1)
        }
        assert redefined.structures["Signup"].version == 2
        assert removed.structures == {} and removed.structure_versions == {"Signup": 2}
        assert states[7].systems[SYSTEM_ID].status is SystemStatus.INACTIVE
        assert states[8].systems[SYSTEM_ID].status is SystemStatus.ACTIVE
        assert states[-1].status is PartnerStatus.INACTIVE

    def test_evolve_never_mutates_the_previous_state(self) -> None:
        before = fold(ONE_OF_EACH[:2])
        snapshot = state_to_dict(before)
        evolve(before, DEFINED, T1)
        evolve(before, replace(ADDED, system_id=PARTNER_ID), T1)
        assert state_to_dict(before) == snapshot

    def test_updated_at_and_utc(self) -> None:
        state = evolve(None, CREATED, T0.astimezone(timezone(timedelta(hours=-5))))
        assert state.created_at == T0 and state.created_at.tzinfo is UTC
        assert evolve(state, ADDED, T1).updated_at == T1

    @pytest.mark.parametrize("event", ONE_OF_EACH[1:], ids=lambda e: type(e).__name__)
    def test_on_none_is_invalid_transition(self, event: Any) -> None:
        with pytest.raises(InvalidTransition):
            evolve(None, event, T0)

    def test_invalid_transitions(self) -> None:
        created = fold([CREATED])
        with pytest.raises(InvalidTransition):
            evolve(created, CREATED, T1)
        with pytest.raises(InvalidTransition):
            evolve(created, DEFINED, T1)  # unknown system
        added = fold([CREATED, ADDED])
        with pytest.raises(InvalidTransition):
            evolve(added, ADDED, T1)
        with pytest.raises(InvalidTransition):
            evolve(added, EventStructureRemoved(system_id=SYSTEM_ID, event_name="x"), T1)
        with pytest.raises(InvalidTransition):
            evolve(None, CREATED, datetime(2024, 1, 1))


class TestEventData:
    def test_every_event_type_registered(self) -> None:
        assert set(EVENT_TYPES) == {type(e).__name__ for e in ONE_OF_EACH}
        # v2 added the envelope's actor; events first published after that start at v1
        born_with_actor = {"AllowedOriginsSet", "ReadTokenIssued", "ReadTokenRevoked"}
        assert all(
            cls.schema_version == (1 if name in born_with_actor else 2)
            for name, cls in EVENT_TYPES.items()
        )

    @pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: type(e).__name__)
    def test_round_trip(self, event: Any) -> None:
        assert from_data(event.event_type, json.loads(json.dumps(to_data(event)))) == event

    def test_errors(self) -> None:
        with pytest.raises(UnknownEventType):
            from_data("PartnerExploded", {})
        with pytest.raises(InvalidValue) as info:
            from_data("SystemDeactivated", {"system_id": SYSTEM_ID})
        assert info.value.field == "key_hash"


class TestStateDict:
    def test_round_trip_is_json_safe(self) -> None:
        for i in range(len(ONE_OF_EACH)):
            state = fold(ONE_OF_EACH[: i + 1], T1)
            d = json.loads(json.dumps(state_to_dict(state)))
            assert state_from_dict(d) == state

    def test_shape(self) -> None:
        d = state_to_dict(fold([CREATED, ADDED, DEFINED]))
        assert d["status"] == "active" and d["created_at"] == T0.isoformat()
        [system] = d["systems"]
        assert system["unknown_events"] == "accept"
        assert system["structures"] == {
            "Signup": {"json_schema": SCHEMA, "required": True, "version": 1}
        }


def base(command_id: str, **kw: Any) -> dict[str, Any]:
    return {"command_id": command_id, "aggregate_id": PARTNER_ID, "issued_at": T0, **kw}


EXAMPLES: list[Command] = [
    CreatePartner(**base("c0", name="Acme", email="ops@acme.example", max_systems=2)),
    AddSystem(
        **base("c1", system_id=SYSTEM_ID, name="Web", key_hash=KEY1, key_prefix="sk_live_W1xx")
    ),
    RotateApiKey(**base("c2", system_id=SYSTEM_ID, key_hash=KEY2, key_prefix="sk_live_W2xx")),
    SetUnknownEventPolicy(**base("c3", system_id=SYSTEM_ID, policy="reject")),
    DefineEventStructure(
        **base("c4", system_id=SYSTEM_ID, event_name="Signup", json_schema=SCHEMA, required=False)
    ),
    RemoveEventStructure(**base("c5", system_id=SYSTEM_ID, event_name="Signup")),
    DeactivateSystem(**base("c6", system_id=SYSTEM_ID)),
    ReactivateSystem(**base("c7", system_id=SYSTEM_ID)),
    SetAllowedOrigins(**base("c9", system_id=SYSTEM_ID, origins=["https://Shop.example.com/"])),
    IssueReadToken(
        **base("c10", token_id=TOKEN_ID, name="dash", token_hash=TOKEN, token_prefix="rt_live_Ab")
    ),
    RevokeReadToken(**base("c11", token_id=TOKEN_ID)),
    DeactivatePartner(**base("c8", correlation_id="corr", actor="admin")),
]


class TestHandle:
    def run(self, snapshot: Snapshot, command: Any) -> Any:
        return handle(PARTNER_SPEC, snapshot, command, producer="test", window=20)

    def test_full_lifecycle_and_fold_from_envelopes(self) -> None:
        snapshot = Snapshot(state=None)
        envelopes = []
        for command in EXAMPLES:
            outcome = self.run(snapshot, command)
            assert outcome.result.status == "accepted", outcome.result
            snapshot = outcome.snapshot
            envelopes.extend(outcome.envelopes)
        assert snapshot.version == len(envelopes) == 13
        assert {e.aggregate_type for e in envelopes} == {"partner"}
        assert [e.aggregate_version for e in envelopes] == list(range(1, 14))
        state = None
        for env in envelopes:
            state = evolve(state, from_data(env.event_type, env.data), env.occurred_at)
        assert state == snapshot.state
        d = json.loads(json.dumps(snapshot_to_dict(PARTNER_SPEC, snapshot)))
        assert snapshot_from_dict(PARTNER_SPEC, d) == snapshot

    def test_duplicate_is_idempotent(self) -> None:
        first = self.run(Snapshot(state=None), EXAMPLES[0])
        again = self.run(first.snapshot, replace(EXAMPLES[0], name="Other"))
        assert again.duplicate and again.result == first.result
        assert again.envelopes == [] and again.snapshot is first.snapshot

    def test_rejection_is_reported(self) -> None:
        created = self.run(Snapshot(state=None), EXAMPLES[0]).snapshot
        outcome = self.run(created, replace(EXAMPLES[1], key_hash="nope"))
        assert (outcome.result.status, outcome.result.reason) == ("rejected", "invalid")
        assert outcome.result.field == "key_hash" and outcome.snapshot.version == 1


ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(PartnerCommand)


class TestCommandTypes:
    def test_base_command_moved_but_still_importable_from_users(self) -> None:
        assert UserModuleCommand is Command

    def test_every_command_has_an_example(self) -> None:
        assert {type(c).__name__ for c in EXAMPLES} == set(COMMAND_TYPES)

    @pytest.mark.parametrize("command", EXAMPLES, ids=lambda c: c.type)
    def test_type_adapter_round_trip(self, command: Command) -> None:
        restored = ADAPTER.validate_python(ADAPTER.dump_python(command, mode="json"))
        assert type(restored) is type(command) and restored == command

    def test_defaults_and_literal_checks(self) -> None:
        fields = base("c", system_id=SYSTEM_ID, name="W", key_hash=KEY1, key_prefix="sk_live_W1xx")
        command = ADAPTER.validate_python({"type": "AddSystem", **fields})
        assert (command.unknown_events, command.description) == ("accept", None)
        with pytest.raises(pydantic.ValidationError):
            ADAPTER.validate_python({"type": "AddSystem", **fields, "unknown_events": "drop"})
