"""Events (past-tense facts) of the user aggregate.

Each event's dataclass fields are exactly the fields of the ``data`` record of its Avro schema
``schemas/avro/user/<event_type>.v<schema_version>.avsc``. Events are never changed once
published: a change means a new schema version plus an upcaster (see ``schemas.upcasting``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

__all__ = [
    "AccountUpdated",
    "UserCreated",
    "UserDeactivated",
    "UserDeleted",
    "UserEvent",
    "UserLastLoginUpdated",
    "UserReactivated",
    "UserUpdated",
]


@dataclass(frozen=True, slots=True)
class UserCreated:
    """A user was registered. Values are normalised (lowercase e-mail/username, E.164 phone,
    role value); ``password_hash`` is an argon2id PHC string.
    """

    event_type: ClassVar[str] = "UserCreated"
    schema_version: ClassVar[int] = 2

    user_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class UserUpdated:
    """The user's profile was replaced with these values."""

    event_type: ClassVar[str] = "UserUpdated"
    schema_version: ClassVar[int] = 2

    first_name: str
    last_name: str
    phone: str | None
    role: str


@dataclass(frozen=True, slots=True)
class AccountUpdated:
    """The e-mail and/or password hash changed; None means that field is unchanged."""

    event_type: ClassVar[str] = "AccountUpdated"
    schema_version: ClassVar[int] = 2

    email: str | None
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class UserDeactivated:
    """The user was suspended; ``reason`` is free audit text."""

    event_type: ClassVar[str] = "UserDeactivated"
    schema_version: ClassVar[int] = 2

    reason: str | None


@dataclass(frozen=True, slots=True)
class UserReactivated:
    """A suspended user was re-enabled."""

    event_type: ClassVar[str] = "UserReactivated"
    schema_version: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class UserDeleted:
    """The user was soft-deleted (terminal)."""

    event_type: ClassVar[str] = "UserDeleted"
    schema_version: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class UserLastLoginUpdated:
    """The user logged in at ``logged_in_at`` (tz-aware UTC, microsecond precision)."""

    event_type: ClassVar[str] = "UserLastLoginUpdated"
    schema_version: ClassVar[int] = 2

    logged_in_at: datetime


UserEvent = (
    UserCreated
    | UserUpdated
    | AccountUpdated
    | UserDeactivated
    | UserReactivated
    | UserDeleted
    | UserLastLoginUpdated
)
