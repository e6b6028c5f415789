"""The admin roster's rules (issue 22, race 1): a removal is approved only while another
active admin is counted, and only the user's own state seats it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users.commands import DeactivateUser, DeleteUser, UpdateUser
from pipeline.domain.users.roster import Roster, is_active_admin, removes_admin
from pipeline.domain.users.state import User, UserStatus

AT = datetime(2026, 12, 8, tzinfo=UTC)
ADMIN = User(
    user_id="a", username="ada", email="ada@example.org", first_name="Ada",
    last_name="Lovelace", phone=None, role="admin", status=UserStatus.ACTIVE,
    password_hash="$argon2id$x", created_at=AT, updated_at=AT, last_login_at=None,
)  # fmt: skip


def fields(**over: object) -> dict:
    return {"command_id": "c", "aggregate_id": "a", "issued_at": AT, **over}


def profile(role: str) -> UpdateUser:
    return UpdateUser(**fields(), first_name="Ada", last_name="L", phone=None, role=role)


def test_what_takes_an_active_admins_rights() -> None:
    assert removes_admin(ADMIN, DeactivateUser(**fields()))
    assert removes_admin(ADMIN, DeleteUser(**fields()))
    assert removes_admin(ADMIN, profile("teacher"))
    assert not removes_admin(ADMIN, profile("admin"))  # a profile edit keeps the role
    student = replace(ADMIN, role="student")
    assert not removes_admin(student, DeactivateUser(**fields()))
    assert not removes_admin(replace(ADMIN, status=UserStatus.INACTIVE), DeleteUser(**fields()))
    assert not removes_admin(None, DeleteUser(**fields()))
    assert is_active_admin(ADMIN) and not is_active_admin(student)


def seated(*users: str) -> Roster:
    roster = Roster()
    for user in users:
        roster = roster.seat(user, 1, True)
    return roster


def test_two_admins_removing_each_other_one_is_refused() -> None:
    roster = seated("a", "b")
    first = roster.request_removal("a", "c1")
    assert isinstance(first, Roster)
    second = first.request_removal("b", "c2")
    assert isinstance(second, Rejection) and second.reason is RejectionReason.LAST_ADMIN


def test_an_empty_roster_refuses_rather_than_guesses() -> None:
    assert isinstance(Roster().request_removal("a", "c1"), Rejection)
    assert isinstance(seated("a").request_removal("a", "c1"), Rejection)


def test_a_redelivered_request_is_approved_again() -> None:
    approved = seated("a", "b").request_removal("a", "c1")
    assert isinstance(approved, Roster)
    assert approved.request_removal("a", "c1") == approved


def test_a_refused_removal_seats_the_admin_again_and_a_stale_seat_does_not() -> None:
    approved = seated("a", "b").request_removal("a", "c1")
    assert isinstance(approved, Roster) and "a" not in approved.members
    # an older seat of "a" (sent before the removal) changes nothing while it is leaving
    assert approved.seat("a", 1, True) == approved
    kept = approved.seat("a", 1, True, settles="c1")  # the command was refused: still admin
    assert kept.members == {"a": 1, "b": 1} and not kept.leaving
    removed = approved.seat("a", 2, False, settles="c1")
    assert removed.members == {"b": 1} and removed.retired == {"a": 2}
    assert removed.seat("a", 1, True) == removed  # late news from before the removal


def test_the_roster_survives_its_table_form() -> None:
    approved = seated("a", "b").request_removal("a", "c1")
    assert isinstance(approved, Roster)
    assert Roster.from_dict(approved.to_dict()) == approved
    assert Roster.from_dict(None) == Roster()


# Any interleaving of requests and settlements over three admins: the roster never
# approves a removal that leaves no counted admin, and whoever it counts has not been
# removed by an approved command that was decided.
@given(st.permutations(list(itertools.product("abc", [True, False]))))
def test_never_approves_the_last_removal(order: list[tuple[str, bool]]) -> None:
    roster, approved, decided = seated("a", "b", "c"), [], set()
    for user, request in order:
        if request:
            answer = roster.request_removal(user, f"rm-{user}")
            if isinstance(answer, Roster):
                roster = answer
                approved.append(user)
        elif user in approved and user not in decided:
            roster = roster.seat(user, 2, False, settles=f"rm-{user}")
            decided.add(user)
    assert len(set(approved)) <= 2
    assert set(roster.members) == {"a", "b", "c"} - set(approved)
