"""The chirp and follow rules (seed 001, issue 10), pure: no broker, no store."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain import chirps, follows
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.timeline_policy import TimelinePolicy

AT = datetime(2026, 12, 3, tzinfo=UTC)
ADA, GRACE = str(uuid.uuid4()), str(uuid.uuid4())


def fields(aggregate_id: str, actor: str = ADA) -> dict:
    return {"command_id": str(uuid.uuid4()), "aggregate_id": aggregate_id, "issued_at": AT,
            "actor": actor}  # fmt: skip


def post(text: str, chirp_id: str | None = None) -> list | Rejection:
    command = chirps.PostChirp(**fields(chirp_id or str(uuid.uuid4())), author_id=ADA, text=text)
    return chirps.decide(None, command)


def reason(outcome: object) -> RejectionReason:
    assert isinstance(outcome, Rejection), outcome
    return outcome.reason


def test_text_is_counted_in_code_points_after_nfc() -> None:
    composed = "e\u0301" * 280  # 560 code points as typed, 280 after NFC
    [event] = post(composed)
    assert event.text == "é" * 280
    assert reason(post("é" * 281)) is RejectionReason.INVALID
    assert reason(post("   \n")) is RejectionReason.INVALID
    assert chirps.chirp_text("🐦" * 280) == "🐦" * 280  # astral characters count once


@given(st.text(min_size=1, max_size=400))
def test_any_text_is_accepted_iff_1_to_280_code_points_and_not_blank(text: str) -> None:
    nfc = unicodedata.normalize("NFC", text)
    outcome = post(text)
    if nfc.strip() and len(nfc) <= 280:
        assert outcome[0].text == nfc
    else:
        assert reason(outcome) is RejectionReason.INVALID


def test_post_delete_lifecycle() -> None:
    chirp_id = str(uuid.uuid4())
    [posted] = post("hello", chirp_id)
    state = chirps.evolve(None, posted, AT)
    repost = chirps.PostChirp(**fields(chirp_id), author_id=ADA, text="again")
    assert reason(chirps.decide(state, repost)) is RejectionReason.ALREADY_EXISTS
    other = chirps.DeleteChirp(**fields(chirp_id, actor=GRACE))
    assert reason(chirps.decide(state, other)) is RejectionReason.FORBIDDEN
    [deleted] = chirps.decide(state, chirps.DeleteChirp(**fields(chirp_id)))
    state = chirps.evolve(state, deleted, AT)
    assert state.deleted and state.text == ""
    again = chirps.decide(state, chirps.DeleteChirp(**fields(chirp_id)))
    assert reason(again) is RejectionReason.DELETED
    unknown = chirps.decide(None, chirps.DeleteChirp(**fields(str(uuid.uuid4()))))
    assert reason(unknown) is RejectionReason.NOT_FOUND
    with pytest.raises(InvalidTransition):
        chirps.evolve(None, deleted, AT)


def follow(kind: type, follower: str = ADA, followee: str = GRACE, pair: str | None = None):
    return kind(**fields(pair or follows.follow_id(follower, followee), actor=follower),
                follower_id=follower, followee_id=followee)  # fmt: skip


def test_follow_unfollow_lifecycle() -> None:
    [followed] = follows.decide(None, follow(follows.FollowUser))
    state = follows.evolve(None, followed, AT)
    assert reason(follows.decide(state, follow(follows.FollowUser))) is (
        RejectionReason.ALREADY_EXISTS
    )
    [unfollowed] = follows.decide(state, follow(follows.UnfollowUser))
    state = follows.evolve(state, unfollowed, AT)
    assert not state.following
    assert reason(follows.decide(state, follow(follows.UnfollowUser))) is (
        RejectionReason.NOT_FOUND
    )
    assert follows.decide(state, follow(follows.FollowUser))  # follow again: fine
    with pytest.raises(InvalidTransition):
        follows.evolve(state, unfollowed, AT)


def test_no_self_follow_and_the_pair_is_the_aggregate() -> None:
    assert reason(follows.decide(None, follow(follows.FollowUser, ADA, ADA))) is (
        RejectionReason.INVALID
    )
    elsewhere = follow(follows.FollowUser, pair=str(uuid.uuid4()))
    rejected = follows.decide(None, elsewhere)
    assert reason(rejected) is RejectionReason.INVALID and rejected.field == "aggregate_id"
    assert follows.follow_id(ADA, GRACE) != follows.follow_id(GRACE, ADA)
    with pytest.raises(InvalidValue):
        chirps.chirp_text(None)


def test_celebrity_hysteresis_line() -> None:
    policy = TimelinePolicy()
    assert (policy.celebrity_followers, policy.demote_below) == (10_000, 9_000)
    assert TimelinePolicy(celebrity_followers=3, hysteresis=0.2).demote_below == 2
