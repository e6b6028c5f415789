from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users.aggregate import decide
from pipeline.domain.users.commands import (
    Command,
    CreateUser,
    DeactivateUser,
    DeleteUser,
    ReactivateUser,
    RecordLogin,
    UpdateAccount,
    UpdateUser,
)
from pipeline.domain.users.events import (
    AccountUpdated,
    UserDeactivated,
    UserDeleted,
    UserLastLoginUpdated,
    UserReactivated,
    UserUpdated,
)
from pipeline.domain.users.state import UserStatus
from tests.unit.domain.user_samples import (
    HASH2,
    T0,
    TYPED,
    USER_ID,
    create_user,
    each_command,
    user,
    user_command,
    user_created,
)


def create(**kw: Any) -> CreateUser:
    return create_user(**(TYPED | kw))


def update(**kw: Any) -> UpdateUser:
    fields = {"first_name": "Jane", "last_name": "Doe", "phone": "+15046218927", "role": "student"}
    return user_command(UpdateUser, **(fields | kw))


ALL_NON_CREATE: list[Command] = each_command()[1:]


def rejected(result: object, reason: RejectionReason, field: str | None = None) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.reason is reason
    assert result.field == field
    return result


class TestCreateUser:
    def test_emits_normalised_user_created(self) -> None:
        assert decide(None, create()) == [user_created()]

    def test_phone_is_optional(self) -> None:
        [event] = decide(None, create(phone=None))  # type: ignore[misc]
        assert event.phone is None

    @pytest.mark.parametrize("status", list(UserStatus))
    def test_on_existing_user_already_exists(self, status: UserStatus) -> None:
        rejected(decide(user(status=status), create()), RejectionReason.ALREADY_EXISTS)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("username", "x"),
            ("email", "not-an-email"),
            ("first_name", "  "),
            ("last_name", "y" * 101),
            ("phone", "12"),
            ("role", "superuser"),
            ("password_hash", "plaintext"),
        ],
    )
    def test_invalid_fields(self, field: str, value: str) -> None:
        result = rejected(decide(None, create(**{field: value})), RejectionReason.INVALID, field)
        assert result.message

    def test_aggregate_id_must_be_canonical_uuid(self) -> None:
        for bad in ["not-a-uuid", USER_ID.upper()]:
            command = replace(create(), aggregate_id=bad)
            rejected(decide(None, command), RejectionReason.INVALID, "aggregate_id")


class TestCommonRules:
    @pytest.mark.parametrize("command", ALL_NON_CREATE, ids=lambda c: type(c).__name__)
    def test_not_found(self, command: Command) -> None:
        rejected(decide(None, command), RejectionReason.NOT_FOUND)

    @pytest.mark.parametrize("command", ALL_NON_CREATE, ids=lambda c: type(c).__name__)
    def test_deleted(self, command: Command) -> None:
        result = rejected(decide(user(status=UserStatus.DELETED), command), RejectionReason.DELETED)
        assert result.message == "user is deleted"


class TestUpdateUser:
    def test_changed(self) -> None:
        result = decide(user(), update(first_name=" Janet ", phone=None, role="TEACHER"))
        assert result == [
            UserUpdated(first_name="Janet", last_name="Doe", phone=None, role="teacher")
        ]

    def test_unchanged_after_normalisation_is_noop(self) -> None:
        assert decide(user(), update(first_name=" Jane ", phone="(504) 621-8927")) == []

    def test_allowed_on_inactive(self) -> None:
        assert decide(user(status=UserStatus.INACTIVE), update(last_name="Roe")) != []

    def test_invalid(self) -> None:
        rejected(decide(user(), update(phone="nope")), RejectionReason.INVALID, "phone")
        rejected(decide(user(), update(role="")), RejectionReason.INVALID, "role")


class TestUpdateAccount:
    def test_neither_field_is_invalid(self) -> None:
        rejected(decide(user(), user_command(UpdateAccount)), RejectionReason.INVALID)

    def test_new_email(self) -> None:
        result = decide(user(), user_command(UpdateAccount, email="NEW@example.com"))
        assert result == [AccountUpdated(email="new@example.com", password_hash=None)]

    def test_same_email_no_password_is_noop(self) -> None:
        assert decide(user(), user_command(UpdateAccount, email=" JANE@example.com")) == []

    def test_same_email_with_password_changes_password_only(self) -> None:
        command = user_command(UpdateAccount, email="jane@example.com", password_hash=HASH2)
        assert decide(user(), command) == [AccountUpdated(email=None, password_hash=HASH2)]

    def test_password_only(self) -> None:
        command = user_command(UpdateAccount, password_hash=HASH2)
        assert decide(user(), command) == [AccountUpdated(email=None, password_hash=HASH2)]

    def test_invalid(self) -> None:
        bad_email = user_command(UpdateAccount, email="bad")
        rejected(decide(user(), bad_email), RejectionReason.INVALID, "email")
        bad_hash = user_command(UpdateAccount, password_hash="$2b$bcrypt")
        rejected(decide(user(), bad_hash), RejectionReason.INVALID, "password_hash")


class TestLifecycle:
    def test_deactivate(self) -> None:
        command = user_command(DeactivateUser, reason="spam")
        assert decide(user(), command) == [UserDeactivated(reason="spam")]
        inactive = user(status=UserStatus.INACTIVE)
        rejected(decide(inactive, command), RejectionReason.INVALID_STATE)

    def test_reactivate(self) -> None:
        command = user_command(ReactivateUser)
        assert decide(user(status=UserStatus.INACTIVE), command) == [UserReactivated()]
        rejected(decide(user(), command), RejectionReason.INVALID_STATE)

    @pytest.mark.parametrize("status", [UserStatus.ACTIVE, UserStatus.INACTIVE])
    def test_delete(self, status: UserStatus) -> None:
        assert decide(user(status=status), user_command(DeleteUser)) == [UserDeleted()]

    def test_record_login_normalises_to_utc(self) -> None:
        local = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
        [event] = decide(user(), user_command(RecordLogin, logged_in_at=local))  # type: ignore[misc]
        assert event == UserLastLoginUpdated(logged_in_at=local)
        assert event.logged_in_at.tzinfo is UTC
        assert event.logged_in_at.microsecond == 123456

    def test_record_login_on_inactive(self) -> None:
        command = user_command(RecordLogin, logged_in_at=T0)
        rejected(decide(user(status=UserStatus.INACTIVE), command), RejectionReason.INVALID_STATE)

    def test_record_login_naive_time_is_invalid(self) -> None:
        command = user_command(RecordLogin, logged_in_at=datetime(2024, 5, 1))
        rejected(decide(user(), command), RejectionReason.INVALID, "logged_in_at")
