"""GrantAdmin: the operator's way back to an admin (``streamfold create-admin``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users import User, UserStatus, decide
from pipeline.domain.users.commands import GrantAdmin
from pipeline.domain.users.events import UserUpdated

USER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
GRANT = GrantAdmin(command_id="cmd-1", aggregate_id=USER_ID, issued_at=T0)


def user(**over: Any) -> User:
    fields: dict[str, Any] = {
        "user_id": USER_ID,
        "username": "admin",
        "email": "admin@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "phone": "+15046218927",
        "role": "student",
        "status": UserStatus.ACTIVE,
        "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "created_at": T0,
        "updated_at": T0,
        "last_login_at": None,
    }
    return User(**(fields | over))


def test_a_demoted_user_gets_the_role_back_with_its_profile_unchanged() -> None:
    assert decide(user(role="teacher"), GRANT) == [
        UserUpdated(first_name="Grace", last_name="Hopper", phone="+15046218927", role="admin")
    ]


def test_an_inactive_user_gets_the_role_its_status_is_left_alone() -> None:
    [event] = decide(user(status=UserStatus.INACTIVE), GRANT)  # type: ignore[misc]
    assert event.role == "admin"


def test_an_admin_is_a_no_op() -> None:
    assert decide(user(role="admin"), GRANT) == []


def test_a_deleted_user_stays_deleted() -> None:
    rejection = decide(user(status=UserStatus.DELETED), GRANT)
    assert isinstance(rejection, Rejection) and rejection.reason is RejectionReason.DELETED


def test_an_unknown_user_is_not_found() -> None:
    rejection = decide(None, GRANT)
    assert isinstance(rejection, Rejection) and rejection.reason is RejectionReason.NOT_FOUND
