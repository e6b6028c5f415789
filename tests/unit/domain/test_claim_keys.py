from __future__ import annotations

import pytest

from pipeline.domain.users.commands import CreateUser
from pipeline.write.aggregates import USERS
from pipeline.write.routing import ClaimKeys, submission
from tests.unit.domain.user_samples import create_user

KEYS = ClaimKeys(b"k" * 32)


def create(email: str, username: str = "ada") -> CreateUser:
    return create_user(email=email, username=username)


def test_a_claim_key_keeps_its_kind_and_hides_its_value() -> None:
    key = KEYS.key("email:ada@example.org")
    kind, _, digest = key.partition(":")
    assert kind == "email" and len(digest) == 64 and "ada" not in key
    assert KEYS.key("email:ada@example.org") == key  # stable: uniqueness depends on it
    assert ClaimKeys(b"x" * 32).key("email:ada@example.org") != key  # keyed


def test_normalised_values_meet_in_one_claim() -> None:
    assert KEYS.for_command(USERS, create("Ada@Example.org")) == KEYS.for_command(
        USERS, create("ada@example.org")
    )


def test_no_email_in_the_kafka_key_or_the_claims() -> None:
    topic, key, _ = submission(create("ada@example.org"), KEYS)
    assert topic == USERS.reservations_topic
    assert b"ada@example.org" not in key
    assert key.decode() == KEYS.key("email:ada@example.org")


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        ClaimKeys(b"short")
