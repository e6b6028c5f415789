"""Jane Doe's account: the sample of the user aggregate that its unit tests share.

The command that creates it, the event that records it, the state it folds to and a command
of each kind. Profile values are the normalised ones (what ``decide`` emits and ``evolve``
keeps); a test of normalisation passes its raw values as overrides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pipeline.domain.users import commands
from pipeline.domain.users.events import UserCreated
from pipeline.domain.users.state import User, UserStatus

C = TypeVar("C", bound=commands.Command)

USER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
HASH2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$b3RoZXJoYXNo"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PROFILE: dict[str, Any] = {
    "username": "jane_doe",
    "email": "jane@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+15046218927",
    "role": "student",
    "password_hash": HASH,
}
"""Jane's fields as ``CreateUser``, ``UserCreated`` and ``User`` all name them."""
TYPED: dict[str, Any] = {
    "username": "Jane_Doe",
    "email": " Jane@Example.com ",
    "first_name": " Jane ",
    "phone": "504-621-8927",
    "role": "Student",
}
"""Jane's profile as typed: ``decide`` normalises it to ``PROFILE``."""


def user_command(cls: type[C], **fields: Any) -> C:
    """A ``cls`` for Jane's account: command id ``cmd-1``, issued at ``T0``; ``fields`` adds
    the command's own fields and replaces any of those."""
    return cls(**({"command_id": "cmd-1", "aggregate_id": USER_ID, "issued_at": T0} | fields))


def create_user(**fields: Any) -> commands.CreateUser:
    """``CreateUser`` with Jane's ``PROFILE``; ``fields`` replaces any field."""
    return user_command(commands.CreateUser, **(PROFILE | fields))


def user_created(**fields: Any) -> UserCreated:
    """``UserCreated`` with Jane's ``PROFILE``; ``fields`` replaces any field."""
    return UserCreated(**({"user_id": USER_ID} | PROFILE | fields))


def user(**fields: Any) -> User:
    """Jane's state as created at ``T0``: active, never logged in; ``fields`` replaces any."""
    created = {"status": UserStatus.ACTIVE, "created_at": T0, "updated_at": T0}
    return User(**({"user_id": USER_ID} | PROFILE | created | {"last_login_at": None} | fields))


def each_command(at: datetime = T0, **common: Any) -> list[commands.Command]:
    """One command of each kind but ``GrantAdmin``, in an order where each changes Jane's
    account in turn: create, update, account, login, deactivate, reactivate, delete.

    ``at`` is when each is issued and the login's time; ``common`` adds or replaces fields
    of every command (an ``issued_at`` there wins over ``at``).
    """
    fields = {"issued_at": at} | common
    update = {"first_name": "Janet", "last_name": "Doe", "phone": None, "role": "teacher"}
    return [
        create_user(**fields),
        user_command(commands.UpdateUser, **(update | fields)),
        user_command(commands.UpdateAccount, email="new@example.com", **fields),
        user_command(commands.RecordLogin, logged_in_at=at, **fields),
        user_command(commands.DeactivateUser, reason="left", **fields),
        user_command(commands.ReactivateUser, **fields),
        user_command(commands.DeleteUser, **fields),
    ]
