"""Admission: commands of one aggregate that another aggregate must let happen.

A follow needs its followee, and a chirp its author, to be an active user *when it is
decided*. Asking the users read model is not enough: it lags, and a user deactivated
within the lag could still be followed (issue 22, race 2). So the user aggregate itself
admits them, in its own command order: a FollowUser or PostChirp first passes through
the user's partition of ``users.commands``, where the user's state at that offset says
yes or no, and only an admitted command reaches its own aggregate. A deactivation is then
either before the admission (refused) or after it (the follow happened first), never
in between.

Pure rules only; the write side routes the commands (``pipeline.write.routing``) and
runs the check (``pipeline.write.agents.commands``).
"""

from __future__ import annotations

from typing import Any

from pipeline.domain.chirps.commands import PostChirp
from pipeline.domain.follows.commands import FollowUser
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users.state import User, UserStatus

ADMITTING_AGGREGATE = "user"
"""The aggregate type whose state admits commands (``admitting_user``)."""


def admitting_user(command: Any) -> str | None:
    """The id of the user who must admit ``command``: a FollowUser's followee, a
    PostChirp's author; None for a command that needs no admission (an unfollow, a
    chirp's deletion: taking something back never needs the other side's consent)."""
    if isinstance(command, FollowUser):
        return command.followee_id
    if isinstance(command, PostChirp):
        return command.author_id
    return None


def admit(user: User | None, command: Any) -> Rejection | None:
    """None when ``user`` (the state of :func:`admitting_user`'s user, None if it never
    existed) lets ``command`` happen now; else the refusal: NOT_FOUND for a user that
    does not exist or was deleted, USER_INACTIVE for a deactivated one."""
    if user is None or user.status is UserStatus.DELETED:
        return Rejection(RejectionReason.NOT_FOUND, f"no user {admitting_user(command)}")
    if user.status is not UserStatus.ACTIVE:
        return Rejection(RejectionReason.USER_INACTIVE, "this user is not active")
    return None
