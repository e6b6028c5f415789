from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from pipeline.domain.users import COMMAND_TYPES
from pipeline.domain.users.commands import Command, GrantAdmin, UpdateAccount, UserCommand
from tests.unit.domain.user_samples import USER_ID, each_command

ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(UserCommand)
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
COMMON: dict[str, Any] = {
    "command_id": "cmd-1",
    "aggregate_id": USER_ID,
    "issued_at": T0,
    "expected_version": 3,
    "correlation_id": "corr",
    "actor": "admin-id",
}

# the login's time in another zone than UTC; COMMON's issued_at keeps every command's at T0
EXAMPLES: list[Command] = [
    *each_command(at=T0.astimezone(timezone(timedelta(hours=2))), **COMMON),
    GrantAdmin(**COMMON),
]


def test_every_command_has_an_example() -> None:
    assert {type(c).__name__ for c in EXAMPLES} == set(COMMAND_TYPES)
    assert all(COMMAND_TYPES[c.type] is type(c) for c in EXAMPLES)


@pytest.mark.parametrize("command", EXAMPLES, ids=lambda c: c.type)
def test_type_adapter_round_trip(command: Command) -> None:
    dumped = ADAPTER.dump_python(command, mode="json")
    assert dumped["type"] == type(command).__name__
    assert isinstance(dumped["issued_at"], str)
    restored = ADAPTER.validate_python(dumped)
    assert type(restored) is type(command)
    assert restored == command


def test_validates_minimal_payload_with_defaults() -> None:
    command = ADAPTER.validate_python(
        {
            "type": "UpdateAccount",
            "command_id": "c",
            "aggregate_id": USER_ID,
            "issued_at": "2024-05-01T12:00:00Z",
            "password_hash": "$argon2id$...",
        }
    )
    assert isinstance(command, UpdateAccount)
    assert command.email is None and command.expected_version is None
    assert command.issued_at == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        ADAPTER.validate_python({"type": "DropDatabase", "command_id": "c"})
