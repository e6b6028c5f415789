"""Commands (imperative requests) for the user aggregate.

Commands carry raw strings exactly as sent; ``decide`` validates and normalises them and
answers with events or a :class:`~pipeline.domain.results.Rejection`. Each concrete command
has a ``type`` discriminator so that, outside the domain, pydantic can validate the
:data:`UserCommand` union directly (``pydantic.TypeAdapter(UserCommand)``). The only pydantic
import here is ``Field`` for the union's discriminator metadata; nothing else depends on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

# Re-exported: the base class moved to pipeline.domain.command, callers still import it here.
from pipeline.domain.command import Command


class CreateUser(Command):
    """Register a new user. ``password_hash`` is an argon2id PHC string, hashed at the edge."""

    type: Literal["CreateUser"] = "CreateUser"
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: str
    password_hash: str


class UpdateUser(Command):
    """Replace the user's profile fields (full replacement, not a patch)."""

    type: Literal["UpdateUser"] = "UpdateUser"
    first_name: str
    last_name: str
    phone: str | None
    role: str


class UpdateAccount(Command):
    """Change e-mail and/or password hash; None leaves a field unchanged (one is required)."""

    type: Literal["UpdateAccount"] = "UpdateAccount"
    email: str | None = None
    password_hash: str | None = None


class DeactivateUser(Command):
    """Suspend an active user; ``reason`` is free text for the audit trail."""

    type: Literal["DeactivateUser"] = "DeactivateUser"
    reason: str | None = None


class ReactivateUser(Command):
    """Re-enable an inactive user."""

    type: Literal["ReactivateUser"] = "ReactivateUser"


class DeleteUser(Command):
    """Soft-delete a user: the record (and its e-mail/username claims) is kept."""

    type: Literal["DeleteUser"] = "DeleteUser"


class GrantAdmin(Command):
    """Give the user the admin role, keeping the rest of the profile.

    The operator's way back when the configured admin was demoted (``streamfold
    create-admin`` sends it as ``system``): it needs no profile fields, unlike
    ``UpdateUser``. Not offered by the HTTP API, where ``UpdateUser`` changes roles.
    """

    type: Literal["GrantAdmin"] = "GrantAdmin"


class RecordLogin(Command):
    """Record a successful login at ``logged_in_at`` (tz-aware)."""

    type: Literal["RecordLogin"] = "RecordLogin"
    logged_in_at: datetime


UserCommand = Annotated[
    CreateUser
    | UpdateUser
    | UpdateAccount
    | DeactivateUser
    | ReactivateUser
    | DeleteUser
    | GrantAdmin
    | RecordLogin,
    Field(discriminator="type"),
]
