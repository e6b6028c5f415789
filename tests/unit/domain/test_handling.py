from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain.errors import InvalidValue
from pipeline.domain.handling import (
    CommandResult,
    Outcome,
    Snapshot,
    handle,
    snapshot_from_dict,
    snapshot_to_dict,
)
from pipeline.domain.users import USER_SPEC
from pipeline.domain.users.commands import (
    Command,
    CreateUser,
    DeactivateUser,
    RecordLogin,
    UpdateAccount,
    UpdateUser,
)
from pipeline.domain.users.state import UserStatus
from schemas.envelope import EVENT_NAMESPACE, Envelope, event_id_for
from tests.unit.domain.user_samples import PROFILE, USER_ID, create_user, user_command

T0 = datetime(2024, 5, 1, 12, 0, 0, 250, tzinfo=UTC)
EMPTY = Snapshot(state=None)


def at_t0(cls: type[Command], command_id: str, **fields: Any) -> Any:
    """A ``cls`` for the sample account, issued at this module's ``T0``."""
    return user_command(cls, command_id=command_id, issued_at=T0, **fields)


def create(command_id: str = "c-create", **kw: Any) -> CreateUser:
    return create_user(**({"command_id": command_id, "issued_at": T0, "phone": None} | kw))


def run(snapshot: Snapshot, command: Any, window: int = 10) -> Outcome:
    return handle(USER_SPEC, snapshot, command, producer="test", window=window)


def created_snapshot() -> Snapshot:
    return run(EMPTY, create()).snapshot


def login(command_id: str, **kw: Any) -> RecordLogin:
    return at_t0(RecordLogin, command_id, logged_in_at=T0, **kw)


def test_the_commands_actor_reaches_every_event() -> None:
    admin_id = "0b5ee0f4-57b8-4c5e-9d0e-5d3b0c7a6a11"
    [created] = run(EMPTY, create(actor=admin_id)).envelopes
    assert created.actor == admin_id
    # a tool's command names no user: the events say so instead of leaving it blank
    [login_event] = run(created_snapshot(), login("c-login")).envelopes
    assert login_event.actor == "system"


def test_event_id_for_is_uuid5_and_stable() -> None:
    import uuid

    assert event_id_for("cmd", 1) == str(uuid.uuid5(EVENT_NAMESPACE, "cmd@1"))
    assert event_id_for("cmd", 1) == event_id_for("cmd", 1) != event_id_for("cmd", 2)


def test_accepted_create_builds_envelope() -> None:
    outcome = run(EMPTY, create(correlation_id="corr-1"))
    assert not outcome.duplicate
    [envelope] = outcome.envelopes
    assert envelope == Envelope(
        event_id=event_id_for("c-create", 1),
        event_type="UserCreated",
        schema_version=2,
        aggregate_type="user",
        aggregate_id=USER_ID,
        aggregate_version=1,
        occurred_at=T0,
        producer="test",
        correlation_id="corr-1",
        causation_id="c-create",
        actor="system",
        data={"user_id": USER_ID} | PROFILE | {"phone": None},
    )
    assert outcome.result == CommandResult(
        command_id="c-create",
        status="accepted",
        aggregate_type="user",
        aggregate_id=USER_ID,
        version=1,
        event_ids=(envelope.event_id,),
    )
    assert outcome.snapshot.version == 1
    assert outcome.snapshot.state.status is UserStatus.ACTIVE
    assert outcome.snapshot.recent == (("c-create", outcome.result),)


def test_correlation_defaults_to_command_id_and_time_is_utc() -> None:
    issued = T0.astimezone(timezone(timedelta(hours=3)))
    [envelope] = run(EMPTY, create(issued_at=issued)).envelopes
    assert envelope.correlation_id == "c-create"
    assert envelope.occurred_at == T0 and envelope.occurred_at.tzinfo is UTC


def test_versions_continue_from_snapshot() -> None:
    outcome = run(created_snapshot(), login("c-login"))
    assert [e.aggregate_version for e in outcome.envelopes] == [2]
    assert outcome.result.version == outcome.snapshot.version == 2


def test_duplicate_returns_original_result_and_same_snapshot() -> None:
    first = run(EMPTY, create())
    again = run(first.snapshot, create(username="someone_else"))
    assert again.duplicate
    assert again.result == first.result
    assert again.envelopes == []
    assert again.snapshot is first.snapshot


def test_duplicate_of_rejected_command_is_rejected_again() -> None:
    first = run(created_snapshot(), create("c-second"))
    assert first.result.reason == "already_exists"
    again = run(first.snapshot, create("c-second"))
    assert again.duplicate and again.result == first.result


def test_conflict_on_expected_version() -> None:
    snapshot = created_snapshot()
    outcome = run(snapshot, login("c-login", expected_version=0))
    assert outcome.result.status == "rejected"
    assert outcome.result.reason == "conflict"
    assert "expected version 0" in (outcome.result.message or "")
    assert "version 1" in (outcome.result.message or "")
    assert outcome.envelopes == []
    assert outcome.snapshot.version == 1 and outcome.snapshot.state == snapshot.state
    assert outcome.snapshot.recent[-1] == ("c-login", outcome.result)
    assert run(snapshot, login("c-login", expected_version=1)).result.status == "accepted"


def test_rejection_keeps_version_and_state() -> None:
    snapshot = created_snapshot()
    profile = {"first_name": "", "last_name": "Doe", "phone": None, "role": "student"}
    command = at_t0(UpdateUser, "c-up", **profile)
    outcome = run(snapshot, command)
    assert outcome.result == CommandResult(
        command_id="c-up",
        status="rejected",
        aggregate_type="user",
        aggregate_id=USER_ID,
        version=1,
        reason="invalid",
        message=outcome.result.message,
        field="first_name",
    )
    assert outcome.snapshot.state == snapshot.state


def test_not_found_on_empty() -> None:
    outcome = run(EMPTY, login("c-login"))
    assert (outcome.result.reason, outcome.result.version) == ("not_found", 0)


def test_naive_issued_at_is_invalid() -> None:
    outcome = run(EMPTY, create(issued_at=datetime(2024, 5, 1)))
    assert (outcome.result.reason, outcome.result.field) == ("invalid", "issued_at")


def test_accepted_noop() -> None:
    snapshot = created_snapshot()
    command = at_t0(UpdateAccount, "c-noop", email="JANE@example.com")
    outcome = run(snapshot, command)
    assert outcome.result.status == "accepted"
    assert outcome.result.version == 1 and outcome.result.event_ids == ()
    assert outcome.envelopes == []
    assert outcome.snapshot.state == snapshot.state
    assert outcome.snapshot.recent[-1][0] == "c-noop"


def test_deterministic_envelopes() -> None:
    snapshot = created_snapshot()
    command = at_t0(DeactivateUser, "c-d", reason="x")
    first, second = run(snapshot, command), run(snapshot, command)
    assert first.envelopes == second.envelopes
    assert first.snapshot == second.snapshot


def test_window_bounds_recent() -> None:
    snapshot = created_snapshot()
    for i in range(5):
        snapshot = run(snapshot, login(f"c-{i}"), window=3).snapshot
    assert [cid for cid, _ in snapshot.recent] == ["c-2", "c-3", "c-4"]
    # An id that fell out of the window is no longer recognised as a duplicate.
    assert not run(snapshot, login("c-0"), window=3).duplicate
    assert run(snapshot, login("c-4"), window=3).duplicate


def test_window_must_be_positive() -> None:
    with pytest.raises(InvalidValue):
        run(EMPTY, create(), window=0)


def test_snapshot_dict_round_trip() -> None:
    snapshot = created_snapshot()
    snapshot = run(snapshot, login("c-bad", expected_version=7)).snapshot
    snapshot = run(snapshot, login("c-ok")).snapshot
    d = json.loads(json.dumps(snapshot_to_dict(USER_SPEC, snapshot)))
    assert snapshot_from_dict(USER_SPEC, d) == snapshot
    assert snapshot_from_dict(USER_SPEC, snapshot_to_dict(USER_SPEC, EMPTY)) == EMPTY


def test_command_result_dict_round_trip() -> None:
    result = CommandResult(
        command_id="c",
        status="rejected",
        aggregate_type="user",
        aggregate_id=USER_ID,
        version=3,
        reason="invalid",
        message="m",
        field="email",
    )
    assert CommandResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    accepted = replace(result, status="accepted", event_ids=("a", "b"), reason=None, field=None)
    assert CommandResult.from_dict(accepted.to_dict()) == accepted


def test_a_result_names_the_commands_actor_for_who_may_read_it() -> None:
    """GET /api/commands/{id} shows a result to its issuer and admins only (issue 7)."""
    admin_id = "0b5ee0f4-57b8-4c5e-9d0e-5d3b0c7a6a11"
    first = run(EMPTY, create(actor=admin_id))
    assert first.result.actor == admin_id
    rejected = run(first.snapshot, login("c-1", expected_version=7, actor=admin_id))
    assert rejected.result.status == "rejected" and rejected.result.actor == admin_id
    # a duplicate is answered with the original result, whoever sent it again
    again = run(first.snapshot, create(actor="someone-else"))
    assert again.duplicate and again.result.actor == admin_id
    assert run(EMPTY, create()).result.actor is None  # a tool's command: admins only
    assert CommandResult.from_dict({**first.result.to_dict(), "actor": None}).actor is None
    legacy = {k: v for k, v in first.result.to_dict().items() if k != "actor"}
    assert CommandResult.from_dict(legacy).actor is None  # stored before results had it
