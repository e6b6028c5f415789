"""The admin roster: the install never loses its last active admin, race-free (issue 7;
issue 22, race 1).

Seed 000 gives admins alone the user-management routes: with no active admin left,
nobody could manage users. Whether a demotion leaves one is a question about *all*
users, so it cannot be decided by one user's aggregate: two admins demoting each other
on two partitions would each see the other as the remaining admin. The roster is the
one place that answers it, held on a single partition (the users reservation agent's,
key :data:`ROSTER_KEY`), so its answers come one at a time:

1. A command that would take admin rights from an active admin (:func:`removes_admin`)
   is not decided by the user's aggregate at first: it asks the roster
   (:meth:`Roster.request_removal`), which approves it only while another active admin
   is seated and not itself being removed, and from then counts the user as leaving.
2. The approved command comes back to the user's aggregate and is decided there as any
   command (it may still be refused: a version conflict); the aggregate then tells the
   roster the user's status after it (:meth:`Roster.seat` with ``settles``).
3. Every other change of who is an active admin (a grant, a reactivation, a new admin),
   and every accepted command of an active admin, also seats the user with its version:
   an install that had admins before the roster existed fills it as they act (a login
   is a command), and until another admin is seated a removal is refused, never let
   through.

The roster only ever counts admins whose seat came from the user's own state (its
aggregate after a decision), and never counts one that is being removed; versions make a
late seat from before a removal harmless. So whoever it counts is an active admin, and
approving a removal only while someone else is counted keeps one.

Pure: the state and its rules; the agents send the messages (``pipeline/write``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users.commands import DeactivateUser, DeleteUser, UpdateUser
from pipeline.domain.users.state import User, UserStatus

ROSTER_KEY = "roster:admins"
"""The key (and so the one partition of ``users.reservations``) that holds the roster."""

ADMIN = "admin"


def is_active_admin(user: User | None) -> bool:
    return user is not None and user.status is UserStatus.ACTIVE and user.role == ADMIN


def removes_admin(user: User | None, command: Any) -> bool:
    """True when ``command``, decided on ``user``, would take away an active admin's
    rights: a deactivation, a deletion, or an update to another role."""
    if not is_active_admin(user):
        return False
    if isinstance(command, DeactivateUser | DeleteUser):
        return True
    return isinstance(command, UpdateUser) and command.role != ADMIN


@dataclass(frozen=True, slots=True)
class Roster:
    """members: user id -> the version at which it was last seated as an active admin.
    leaving: user id -> the command ids of its approved removals not decided yet.
    retired: user id -> the version at which it was seated as no (longer an) admin."""

    members: Mapping[str, int] = field(default_factory=dict)
    leaving: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retired: Mapping[str, int] = field(default_factory=dict)

    def request_removal(self, user_id: str, command_id: str) -> Roster | Rejection:
        """The roster once removal ``command_id`` of ``user_id`` is approved, or the
        LAST_ADMIN refusal when no other active admin would be left. Asked again for the
        same command (a redelivery), it answers the same."""
        if command_id in self.leaving.get(user_id, ()):
            return self
        others = set(self.members) - {user_id} - set(self.leaving)
        if not others:
            return Rejection(
                RejectionReason.LAST_ADMIN,
                "no other active admin would be left: make another admin first",
            )
        members = {u: v for u, v in self.members.items() if u != user_id}
        leaving = {**self.leaving, user_id: (*self.leaving.get(user_id, ()), command_id)}
        return Roster(members, leaving, self.retired)

    def seat(
        self, user_id: str, version: int, active_admin: bool, settles: str | None = None
    ) -> Roster:
        """The roster once ``user_id`` at aggregate ``version`` is (not) an active admin.
        ``settles``: the approved removal this status follows from. While a user has
        removals not decided, only their settlement changes it; a status older than the
        one seated last is ignored."""
        leaving = dict(self.leaving)
        if settles is not None and settles in leaving.get(user_id, ()):
            rest = tuple(c for c in leaving[user_id] if c != settles)
            if rest:
                return Roster(self.members, {**leaving, user_id: rest}, self.retired)
            del leaving[user_id]
        elif user_id in leaving:
            return self
        newest = max(self.members.get(user_id, -1), self.retired.get(user_id, -1))
        if version < newest:
            return Roster(self.members, leaving, self.retired)
        members, retired = dict(self.members), dict(self.retired)
        if active_admin:
            members[user_id] = version
            retired.pop(user_id, None)
        else:
            members.pop(user_id, None)
            retired[user_id] = version
        return Roster(members, leaving, retired)

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": dict(self.members),
            "leaving": {u: list(c) for u, c in self.leaving.items()},
            "retired": dict(self.retired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Roster:
        """Inverse of :meth:`to_dict`; None (never stored) is the empty roster."""
        if not data:
            return cls()
        leaving = {u: tuple(c) for u, c in data.get("leaving", {}).items()}
        return cls(dict(data.get("members", {})), leaving, dict(data.get("retired", {})))
