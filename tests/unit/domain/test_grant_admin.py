"""GrantAdmin: the operator's way back to an admin (``streamfold create-admin``)."""

from __future__ import annotations

from typing import Any

from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users import User, UserStatus, decide
from pipeline.domain.users.commands import GrantAdmin
from pipeline.domain.users.events import UserUpdated
from tests.unit.domain.user_samples import user as sample_user
from tests.unit.domain.user_samples import user_command

GRANT = user_command(GrantAdmin)


def user(**over: Any) -> User:
    """The sample account, held by Grace Hopper."""
    return sample_user(
        username="admin", email="admin@example.com", first_name="Grace", last_name="Hopper", **over
    )


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
