"""State of the user aggregate and its JSON-safe table form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class UserStatus(StrEnum):
    """Lifecycle: ACTIVE <-> INACTIVE, either -> DELETED (terminal, soft delete)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """Current state of one user, folded from its events.

    All strings are normalised values (see ``pipeline.domain.values``); ``role`` is a
    ``UserRole`` value; datetimes are tz-aware UTC.
    """

    user_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: str
    status: UserStatus
    password_hash: str
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def state_to_dict(user: User) -> dict[str, Any]:
    """JSON-safe dict of ``user``: datetimes as ISO-8601 strings, status as its value."""
    return {
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": user.phone,
        "role": user.role,
        "status": user.status.value,
        "password_hash": user.password_hash,
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def state_from_dict(d: dict[str, Any]) -> User:
    """Inverse of :func:`state_to_dict`. Raises ``KeyError``/``ValueError`` on malformed input."""
    last_login = d["last_login_at"]
    return User(
        user_id=d["user_id"],
        username=d["username"],
        email=d["email"],
        first_name=d["first_name"],
        last_name=d["last_name"],
        phone=d["phone"],
        role=d["role"],
        status=UserStatus(d["status"]),
        password_hash=d["password_hash"],
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        last_login_at=datetime.fromisoformat(last_login) if last_login else None,
    )
