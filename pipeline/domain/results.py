"""Command rejection results returned (not raised) by aggregate ``decide`` functions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Rejection", "RejectionReason"]


class RejectionReason(StrEnum):
    """Why a command was rejected. The string values are part of the public API contract
    (they appear in ``CommandResult.reason`` and API responses); never rename them.
    """

    INVALID = "invalid"  # an input value failed validation; Rejection.field names it
    NOT_FOUND = "not_found"  # the aggregate does not exist
    ALREADY_EXISTS = "already_exists"  # create on an existing aggregate id
    CONFLICT = "conflict"  # expected_version did not match the current version
    DELETED = "deleted"  # the aggregate is soft-deleted; it accepts no further commands
    INVALID_STATE = "invalid_state"  # command not allowed in the current lifecycle status
    DUPLICATE_EMAIL = "duplicate_email"  # the e-mail is claimed by another user
    DUPLICATE_USERNAME = "duplicate_username"  # the username is claimed by another user
    FORBIDDEN = "forbidden"  # the actor may not do this to this aggregate (not its owner)
    USER_INACTIVE = "user_inactive"  # the user who must admit it is deactivated (admission)
    LAST_ADMIN = "last_admin"  # no other active admin would be left (users.roster)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A business refusal of a command.

    ``reason``: machine-readable category; ``message``: human-readable, safe to show;
    ``field``: the offending input field for ``INVALID`` (else usually None).
    """

    reason: RejectionReason
    message: str
    field: str | None = None
