from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain.errors import DomainError, InvalidTransition, InvalidValue, UnknownEventType
from pipeline.domain.users import EVENT_TYPES, from_data, to_data
from pipeline.domain.users.aggregate import claims_for, claims_held, evolve
from pipeline.domain.users.commands import DeleteUser, RecordLogin, UpdateAccount, UpdateUser
from pipeline.domain.users.events import (
    AccountUpdated,
    UserDeactivated,
    UserDeleted,
    UserLastLoginUpdated,
    UserReactivated,
    UserUpdated,
)
from pipeline.domain.users.state import User, UserStatus, state_from_dict, state_to_dict
from tests.unit.domain.user_samples import (
    HASH,
    HASH2,
    T0,
    create_user,
    user,
    user_command,
    user_created,
)

T1 = T0 + timedelta(hours=1)
CREATED = user_created()

ONE_OF_EACH = [
    CREATED,
    UserUpdated(first_name="Janet", last_name="Roe", phone=None, role="teacher"),
    AccountUpdated(email="new@example.com", password_hash=None),
    UserDeactivated(reason=None),
    UserReactivated(),
    UserLastLoginUpdated(logged_in_at=datetime(2024, 5, 2, 8, 30, 0, 5, tzinfo=UTC)),
    UserDeleted(),
]


def created() -> User:
    return evolve(None, CREATED, T0)


class TestEvolve:
    def test_created(self) -> None:
        assert created() == user()

    def test_updated(self) -> None:
        event = UserUpdated(first_name="Janet", last_name="Roe", phone=None, role="teacher")
        state = evolve(created(), event, T1)
        assert (state.first_name, state.last_name, state.phone, state.role) == (
            "Janet",
            "Roe",
            None,
            "teacher",
        )
        assert (state.created_at, state.updated_at) == (T0, T1)

    def test_account_updated_none_means_unchanged(self) -> None:
        state = evolve(created(), AccountUpdated(email=None, password_hash=HASH2), T1)
        assert (state.email, state.password_hash, state.updated_at) == (
            "jane@example.com",
            HASH2,
            T1,
        )
        state = evolve(state, AccountUpdated(email="x@example.com", password_hash=None), T1)
        assert (state.email, state.password_hash) == ("x@example.com", HASH2)

    def test_status_transitions(self) -> None:
        state = evolve(created(), UserDeactivated(reason="r"), T1)
        assert (state.status, state.updated_at) == (UserStatus.INACTIVE, T1)
        state = evolve(state, UserReactivated(), T1)
        assert state.status is UserStatus.ACTIVE
        state = evolve(state, UserDeleted(), T1)
        assert state.status is UserStatus.DELETED

    def test_login_changes_only_last_login(self) -> None:
        at = datetime(2024, 5, 1, 15, 0, tzinfo=timezone(timedelta(hours=2)))
        state = evolve(created(), UserLastLoginUpdated(logged_in_at=at), T1)
        assert state == replace(created(), last_login_at=at)
        assert state.last_login_at is not None and state.last_login_at.tzinfo is UTC

    def test_occurred_at_normalised_to_utc(self) -> None:
        state = evolve(None, CREATED, T0.astimezone(timezone(timedelta(hours=-5))))
        assert state.created_at == T0 and state.created_at.tzinfo is UTC

    @pytest.mark.parametrize("event", ONE_OF_EACH[1:], ids=lambda e: type(e).__name__)
    def test_on_none_is_invalid_transition(self, event: Any) -> None:
        with pytest.raises(InvalidTransition):
            evolve(None, event, T0)

    def test_create_twice_is_invalid_transition(self) -> None:
        with pytest.raises(InvalidTransition) as info:
            evolve(created(), CREATED, T1)
        assert isinstance(info.value, DomainError)

    def test_naive_time_is_invalid_transition(self) -> None:
        with pytest.raises(InvalidTransition):
            evolve(None, CREATED, datetime(2024, 1, 1))


class TestEventData:
    def test_every_event_type_registered(self) -> None:
        assert set(EVENT_TYPES) == {type(e).__name__ for e in ONE_OF_EACH}
        assert all(cls.schema_version == 2 for cls in EVENT_TYPES.values())

    @pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: type(e).__name__)
    def test_round_trip(self, event: Any) -> None:
        assert from_data(event.event_type, to_data(event)) == event

    def test_to_data_shape(self) -> None:
        assert to_data(UserDeleted()) == {}
        assert to_data(AccountUpdated(email=None, password_hash=HASH)) == {
            "email": None,
            "password_hash": HASH,
        }

    def test_datetime_accepts_iso_string(self) -> None:
        event = from_data("UserLastLoginUpdated", {"logged_in_at": "2024-05-01T12:00:00+00:00"})
        assert event == UserLastLoginUpdated(logged_in_at=T0)

    def test_unknown_event_type(self) -> None:
        with pytest.raises(UnknownEventType) as info:
            from_data("UserExploded", {})
        assert isinstance(info.value, KeyError) and isinstance(info.value, DomainError)
        assert "UserExploded" in str(info.value)

    def test_missing_field(self) -> None:
        with pytest.raises(InvalidValue) as info:
            from_data("UserDeactivated", {})
        assert info.value.field == "reason"


class TestStateDict:
    def test_round_trip_is_json_safe(self) -> None:
        state = created()
        for event in ONE_OF_EACH[1:]:
            state = evolve(state, event, T1)
            d = json.loads(json.dumps(state_to_dict(state)))
            assert state_from_dict(d) == state

    def test_shape(self) -> None:
        d = state_to_dict(created())
        assert d["status"] == "active"
        assert d["created_at"] == "2024-05-01T12:00:00+00:00"
        assert d["last_login_at"] is None


class TestClaims:
    def test_create_claims_normalised_values(self) -> None:
        command = create_user(username="Jane_Doe", email="Jane@Example.com")
        assert claims_for(command) == ("email:jane@example.com", "username:jane_doe")
        assert claims_for(replace(command, email="bad")) == ()
        assert claims_for(replace(command, username="x")) == ()

    def test_update_account_claims_email(self) -> None:
        assert claims_for(user_command(UpdateAccount, email=" X@Example.com")) == (
            "email:x@example.com",
        )
        assert claims_for(user_command(UpdateAccount, password_hash=HASH)) == ()
        assert claims_for(user_command(UpdateAccount, email="nope")) == ()

    def test_other_commands_claim_nothing(self) -> None:
        update = user_command(UpdateUser, first_name="a", last_name="b", phone=None, role="admin")
        assert claims_for(update) == ()
        assert claims_for(user_command(DeleteUser)) == ()
        assert claims_for(user_command(RecordLogin, logged_in_at=T0)) == ()

    def test_claims_held(self) -> None:
        expected = frozenset({"email:jane@example.com", "username:jane_doe"})
        assert claims_held(None) == frozenset()
        assert claims_held(created()) == expected
        assert claims_held(evolve(created(), UserDeleted(), T1)) == expected
