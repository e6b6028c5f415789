"""Property: the envelopes emitted by ``handle`` are a complete record of the aggregate.

Folding only the envelopes (``from_data`` + ``evolve``) from nothing must reproduce the
handler's final state and version, whatever mix of accepted, rejected, no-op and duplicate
commands produced them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.handling import Snapshot, handle
from pipeline.domain.users import USER_SPEC, from_data
from pipeline.domain.users.aggregate import evolve
from pipeline.domain.users.commands import (
    CreateUser,
    DeactivateUser,
    DeleteUser,
    ReactivateUser,
    RecordLogin,
    UpdateAccount,
    UpdateUser,
)
from pipeline.domain.values import hash_password
from tests.unit.domain.user_samples import PROFILE, TYPED, USER_ID

# Hashing is deliberately slow, so hash once per module and reuse.
HASHES = [hash_password("first-password").value, hash_password("second-password").value]
START = datetime(2024, 1, 1, tzinfo=UTC)

names = st.sampled_from(["Jane", " Jane ", "Janet", "Ann", "", "x" * 101])
phones = st.sampled_from([None, "504-621-8927", "+15046218927", "(212) 555-0100", "bogus"])
roles = st.sampled_from(["student", "TEACHER", "admin", "root"])
emails = st.sampled_from([None, "jane@example.com", "JANE@example.com", "j2@example.org", "bad"])
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7))])


def create_fields() -> dict[str, Any]:
    return PROFILE | TYPED | {"password_hash": HASHES[0]}


login_times = st.builds(
    lambda offset, zone: (START + timedelta(microseconds=offset)).astimezone(zone),
    st.integers(min_value=0, max_value=10**12),
    zones,
)

# Command class -> strategy for its specific fields (valid-ish: some values are invalid).
FIELD_STRATEGIES: dict[type, st.SearchStrategy[dict[str, Any]]] = {
    UpdateUser: st.fixed_dictionaries(
        {"first_name": names, "last_name": names, "phone": phones, "role": roles}
    ),
    UpdateAccount: st.fixed_dictionaries(
        {"email": emails, "password_hash": st.sampled_from([None, *HASHES])}
    ),
    DeactivateUser: st.fixed_dictionaries({"reason": st.sampled_from([None, "spam"])}),
    ReactivateUser: st.just({}),
    DeleteUser: st.just({}),
    RecordLogin: st.fixed_dictionaries({"logged_in_at": login_times}),
    CreateUser: st.just(create_fields()),
}
command_body = st.one_of(
    [st.tuples(st.just(kind), fields) for kind, fields in FIELD_STRATEGIES.items()]
)


@st.composite
def command_sequences(draw: st.DrawFn) -> list[Any]:
    bodies = [(CreateUser, create_fields()), *draw(st.lists(command_body, max_size=25))]
    commands: list[Any] = []
    issued_at = START
    for index, (kind, fields) in enumerate(bodies):
        issued_at += timedelta(microseconds=draw(st.integers(min_value=0, max_value=10**9)))
        reuse = commands and draw(st.integers(min_value=0, max_value=9)) == 0
        command_id = draw(st.sampled_from(commands)).command_id if reuse else f"cmd-{index}"
        expected = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=len(commands))))
        commands.append(
            kind(
                command_id=command_id,
                aggregate_id=USER_ID,
                issued_at=issued_at.astimezone(draw(zones)),
                expected_version=expected,
                **fields,
            )
        )
    return commands


@settings(max_examples=100, deadline=None)
@given(commands=command_sequences(), window=st.integers(min_value=1, max_value=8))
def test_folding_envelopes_reproduces_handler_state(commands: list[Any], window: int) -> None:
    snapshot = Snapshot(state=None)
    envelopes = []
    for command in commands:
        outcome = handle(USER_SPEC, snapshot, command, producer="prop", window=window)
        envelopes.extend(outcome.envelopes)
        snapshot = outcome.snapshot
        assert len(snapshot.recent) <= window

    state = None
    for envelope in envelopes:
        event = from_data(envelope.event_type, envelope.data)
        state = evolve(state, event, envelope.occurred_at)

    assert state == snapshot.state
    assert snapshot.version == len(envelopes)
    assert [e.aggregate_version for e in envelopes] == list(range(1, len(envelopes) + 1))
