"""The user aggregate: ``decide`` (command -> events | Rejection), ``evolve`` (state + event
-> state) and uniqueness claims. The state and its table form live in
``pipeline.domain.users.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from functools import singledispatch
from typing import TypeVar

from pipeline.domain import dispatch
from pipeline.domain.errors import InvalidValue
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.users import commands, events
from pipeline.domain.users.commands import Command
from pipeline.domain.users.events import UserEvent
from pipeline.domain.users.state import User, UserStatus
from pipeline.domain.values import (
    Email,
    HashedPassword,
    Phone,
    Username,
    UserRole,
    canonical_uuid,
    email_claim,
    parse_name,
    parse_role,
)

AGGREGATE_TYPE = "user"

_T = TypeVar("_T")


def decide(state: User | None, command: Command) -> list[UserEvent] | Rejection:
    """Decide the events for ``command`` given ``state`` (None = user does not exist).

    Returns a list of events (possibly empty: an accepted no-op) or a ``Rejection``:
    ALREADY_EXISTS (create on existing), NOT_FOUND (anything else on None), DELETED (user is
    soft-deleted), INVALID (bad input; ``field`` set), INVALID_STATE (lifecycle). Does not check
    ``expected_version`` or idempotency; ``pipeline.domain.handling.handle`` does.
    """
    return dispatch.decide(_precondition, _decide, state, command)


def _refusal(state: User) -> Rejection | None:
    if state.status is UserStatus.DELETED:
        return Rejection(RejectionReason.DELETED, "user is deleted")
    return None


# A create is refused on a DELETED user too: the id stays taken after a soft delete.
_precondition = dispatch.precondition("user", commands.CreateUser, _refusal)


_decide = singledispatch(dispatch.no_decide_rule)


def _optional(raw: str | None, parse: Callable[[str], _T]) -> _T | None:
    return None if raw is None else parse(raw)


def _utc(field: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field, "must be a timezone-aware datetime")
    return value.astimezone(UTC)


@_decide.register
def _(command: commands.CreateUser, state: None) -> list[UserEvent] | Rejection:
    phone = _optional(command.phone, Phone.parse)
    return [
        events.UserCreated(
            user_id=canonical_uuid("aggregate_id", command.aggregate_id),
            username=Username.parse(command.username).value,
            email=Email.parse(command.email).value,
            first_name=parse_name("first_name", command.first_name),
            last_name=parse_name("last_name", command.last_name),
            phone=phone.value if phone else None,
            role=parse_role(command.role).value,
            password_hash=HashedPassword.parse(command.password_hash).value,
        )
    ]


@_decide.register
def _(command: commands.UpdateUser, state: User) -> list[UserEvent] | Rejection:
    phone = _optional(command.phone, Phone.parse)
    event = events.UserUpdated(
        first_name=parse_name("first_name", command.first_name),
        last_name=parse_name("last_name", command.last_name),
        phone=phone.value if phone else None,
        role=parse_role(command.role).value,
    )
    current = (state.first_name, state.last_name, state.phone, state.role)
    if (event.first_name, event.last_name, event.phone, event.role) == current:
        return []
    return [event]


@_decide.register
def _(command: commands.UpdateAccount, state: User) -> list[UserEvent] | Rejection:
    if command.email is None and command.password_hash is None:
        return Rejection(RejectionReason.INVALID, "give an email, a password_hash, or both")
    email = _optional(command.email, Email.parse)
    password_hash = _optional(command.password_hash, HashedPassword.parse)
    new_email = email.value if email is not None and email.value != state.email else None
    if new_email is None and password_hash is None:
        return []
    return [
        events.AccountUpdated(
            email=new_email,
            password_hash=password_hash.value if password_hash else None,
        )
    ]


@_decide.register
def _(command: commands.DeactivateUser, state: User) -> list[UserEvent] | Rejection:
    if state.status is UserStatus.INACTIVE:
        return Rejection(RejectionReason.INVALID_STATE, "user is already inactive")
    return [events.UserDeactivated(reason=command.reason)]


@_decide.register
def _(command: commands.ReactivateUser, state: User) -> list[UserEvent] | Rejection:
    if state.status is UserStatus.ACTIVE:
        return Rejection(RejectionReason.INVALID_STATE, "user is already active")
    return [events.UserReactivated()]


@_decide.register
def _(command: commands.DeleteUser, state: User) -> list[UserEvent] | Rejection:
    return [events.UserDeleted()]


@_decide.register
def _(command: commands.GrantAdmin, state: User) -> list[UserEvent] | Rejection:
    # Inactive users may be granted the role (create-admin reactivates separately);
    # deleted ones are refused by the precondition: a soft delete is final.
    if state.role == UserRole.ADMIN.value:
        return []
    return [
        events.UserUpdated(
            first_name=state.first_name,
            last_name=state.last_name,
            phone=state.phone,
            role=UserRole.ADMIN.value,
        )
    ]


@_decide.register
def _(command: commands.RecordLogin, state: User) -> list[UserEvent] | Rejection:
    if state.status is UserStatus.INACTIVE:
        return Rejection(RejectionReason.INVALID_STATE, "user is inactive")
    return [events.UserLastLoginUpdated(logged_in_at=_utc("logged_in_at", command.logged_in_at))]


def evolve(state: User | None, event: UserEvent, occurred_at: datetime) -> User:
    """Apply ``event`` (which occurred at tz-aware ``occurred_at``) to ``state``.

    ``occurred_at`` sets ``created_at``/``updated_at``; ``UserLastLoginUpdated`` changes only
    ``last_login_at``. Raises :class:`InvalidTransition` when the event cannot apply (e.g. any
    event but ``UserCreated`` on None, ``UserCreated`` on an existing user, naive time).
    """
    return dispatch.evolve(_evolve, state, event, occurred_at)


def _existing(state: User | None, event: UserEvent) -> User:
    return dispatch.existing(state, event, "UserCreated")


_evolve = singledispatch(dispatch.no_evolve_rule)


@_evolve.register
def _(event: events.UserCreated, state: User | None, at: datetime) -> User:
    dispatch.absent(state, event, "user", "user_id")
    # the user starts as the registration's values
    return User(
        **asdict(event),
        status=UserStatus.ACTIVE,
        created_at=at,
        updated_at=at,
        last_login_at=None,
    )


@_evolve.register
def _(event: events.UserUpdated, state: User | None, at: datetime) -> User:
    # the event holds the whole profile after the update, field for field
    return replace(_existing(state, event), **asdict(event), updated_at=at)


@_evolve.register
def _(event: events.AccountUpdated, state: User | None, at: datetime) -> User:
    state = _existing(state, event)
    return replace(
        state,
        email=event.email if event.email is not None else state.email,
        password_hash=(
            event.password_hash if event.password_hash is not None else state.password_hash
        ),
        updated_at=at,
    )


def _to_status(status: UserStatus) -> Callable[[UserEvent, User | None, datetime], User]:
    """The transition of an event that only moves the user to ``status``."""

    def transition(event: UserEvent, state: User | None, at: datetime) -> User:
        return replace(_existing(state, event), status=status, updated_at=at)

    return transition


_evolve.register(events.UserDeactivated, _to_status(UserStatus.INACTIVE))
_evolve.register(events.UserReactivated, _to_status(UserStatus.ACTIVE))
_evolve.register(events.UserDeleted, _to_status(UserStatus.DELETED))


@_evolve.register
def _(event: events.UserLastLoginUpdated, state: User | None, at: datetime) -> User:
    state = _existing(state, event)
    # A login is activity, not a profile change, so updated_at is left alone.
    return replace(state, last_login_at=event.logged_in_at.astimezone(UTC))


@singledispatch
def claims_for(command: Command) -> tuple[str, ...]:
    """Unique values ``command`` must reserve before the aggregate sees it, as
    ``"email:<normalised>"`` / ``"username:<normalised>"``. Returns () when nothing needs
    reserving or a value is invalid (``decide`` will reject it).
    """
    return ()


@claims_for.register
def _(command: commands.CreateUser) -> tuple[str, ...]:
    try:
        return (
            f"email:{Email.parse(command.email).value}",
            f"username:{Username.parse(command.username).value}",
        )
    except InvalidValue:
        return ()


@claims_for.register
def _(command: commands.UpdateAccount) -> tuple[str, ...]:
    return email_claim(command.email)


def claims_held(state: User | None) -> frozenset[str]:
    """Claims held by ``state``; a DELETED user keeps them (soft delete keeps e-mail and
    username taken). Empty for None.
    """
    if state is None:
        return frozenset()
    return frozenset({f"email:{state.email}", f"username:{state.username}"})
