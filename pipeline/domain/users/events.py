"""Events (past-tense facts) of the user aggregate and their :data:`UserEvent` union: each
one's fields are the ``data`` record of ``schemas/avro/user/<event_type>.v<schema_version>.avsc``
(:class:`~pipeline.domain.event.DomainEvent`: how a published event may change).
"""

from __future__ import annotations

from datetime import datetime

from pipeline.domain.event import DomainEvent
from pipeline.domain.users.record import UserRecord


class UserCreated(UserRecord, DomainEvent, version=2):
    """A user was registered with the record's values (normalised: lowercase
    e-mail/username, E.164 phone, role value); ``password_hash`` is an argon2id PHC string.
    """

    password_hash: str


class UserUpdated(DomainEvent, version=2):
    """The user's profile was replaced with these values."""

    first_name: str
    last_name: str
    phone: str | None
    role: str


class AccountUpdated(DomainEvent, version=2):
    """The e-mail and/or password hash changed; None means that field is unchanged."""

    email: str | None
    password_hash: str | None


class UserDeactivated(DomainEvent, version=2):
    """The user was suspended; ``reason`` is free audit text."""

    reason: str | None


class UserReactivated(DomainEvent, version=2):
    """A suspended user was re-enabled."""


class UserDeleted(DomainEvent, version=2):
    """The user was soft-deleted (terminal)."""


class UserLastLoginUpdated(DomainEvent, version=2):
    """The user logged in at ``logged_in_at`` (tz-aware UTC, microsecond precision)."""

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
