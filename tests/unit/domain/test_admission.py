"""Admission (issue 22, race 2): which user admits a follow or a chirp, the users'
rule, and where the write side routes a command that needs it."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipeline.domain.admission import admit, admitting_user
from pipeline.domain.chirps.commands import DeleteChirp, PostChirp
from pipeline.domain.follows.aggregate import follow_id
from pipeline.domain.follows.commands import FollowUser, UnfollowUser
from pipeline.domain.results import RejectionReason
from pipeline.domain.users.state import User, UserStatus
from pipeline.write.aggregates import USERS
from pipeline.write.codecs import encode_command
from pipeline.write.routing import ClaimKeys, header, submission

AT = datetime(2026, 12, 7, tzinfo=UTC)
ADA, GRACE = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
KEYS = ClaimKeys(b"k" * 32)


def fields(aggregate_id: str) -> dict:
    return {"command_id": "c-1", "aggregate_id": aggregate_id, "issued_at": AT, "actor": ADA}


FOLLOW = FollowUser(**fields(follow_id(ADA, GRACE)), follower_id=ADA, followee_id=GRACE)
CHIRP = PostChirp(**fields(str(uuid.UUID(int=3))), author_id=ADA, text="hi")
GRACE_STATE = User(
    user_id=GRACE, username="grace", email="grace@example.org", first_name="Grace",
    last_name="Hopper", phone=None, role="student", status=UserStatus.ACTIVE,
    password_hash="$argon2id$x", created_at=AT, updated_at=AT, last_login_at=None,
)  # fmt: skip


def test_a_follow_is_admitted_by_its_followee_and_a_chirp_by_its_author() -> None:
    assert admitting_user(FOLLOW) == GRACE
    assert admitting_user(CHIRP) == ADA
    unfollow = UnfollowUser(**fields(follow_id(ADA, GRACE)), follower_id=ADA, followee_id=GRACE)
    assert admitting_user(unfollow) is None  # taking back needs nobody's consent
    assert admitting_user(DeleteChirp(**fields(CHIRP.aggregate_id))) is None


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (UserStatus.ACTIVE, None),
        (UserStatus.INACTIVE, RejectionReason.USER_INACTIVE),
        (UserStatus.DELETED, RejectionReason.NOT_FOUND),
    ],
)
def test_only_an_active_user_admits(status: UserStatus, reason: RejectionReason | None) -> None:
    refusal = admit(replace(GRACE_STATE, status=status), FOLLOW)
    assert (refusal and refusal.reason) == reason


def test_a_user_that_never_existed_admits_nothing() -> None:
    refusal = admit(None, FOLLOW)
    assert refusal is not None and refusal.reason is RejectionReason.NOT_FOUND
    assert GRACE in refusal.message


def test_a_command_that_needs_admission_enters_at_its_admitter() -> None:
    topic, key, value = submission(FOLLOW, KEYS)
    assert (topic, key) == (USERS.spec.commands_topic, GRACE.encode())
    assert value == encode_command(FOLLOW)  # the command itself: its type tells it apart
    topic, key, _ = submission(CHIRP, KEYS)
    assert (topic, key) == (USERS.spec.commands_topic, ADA.encode())


def test_headers_are_read_from_pairs_or_a_mapping() -> None:
    assert header([("a", b"1"), ("b", b"2")], "b") == b"2"
    assert header({"a": b"1"}, "a") == b"1"
    assert header(None, "a") is None and header([("a", b"1")], "b") is None
