"""The values a user is registered with and keeps on record, in their order: the first
fields of the :class:`~pipeline.domain.users.events.UserCreated` event (then its
``password_hash``) and of the :class:`~pipeline.domain.users.state.User` state (then its
lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UserRecord"]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """All strings are normalised values (``pipeline.domain.values``); ``phone`` E.164 or
    None; ``role`` a ``UserRole`` value."""

    user_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: str
