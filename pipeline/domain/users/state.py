"""State of the user aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pipeline.domain.table_form import from_table, to_table
from pipeline.domain.users.record import UserRecord


class UserStatus(StrEnum):
    """Lifecycle: ACTIVE <-> INACTIVE, either -> DELETED (terminal, soft delete)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class User(UserRecord):
    """Current state of one user, folded from its events: the record's values, then the
    lifecycle. Datetimes are tz-aware UTC.
    """

    status: UserStatus
    password_hash: str
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def state_to_dict(user: User) -> dict[str, Any]:
    """JSON-safe dict of ``user`` (``table_form.to_table``): datetimes as ISO-8601 strings,
    status as its value."""
    return to_table(user)


def state_from_dict(d: dict[str, Any]) -> User:
    """Inverse of :func:`state_to_dict`. Raises ``KeyError``/``ValueError`` on malformed input."""
    return from_table(User, d)
