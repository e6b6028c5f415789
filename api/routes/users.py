"""Admin user management (seed 000): commands go to Kafka, reads come from ClickHouse."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import AdminDep, IdempotencyKey, ServicesDep
from api.last_admin import AdminRosterDep, mark_grant, run_removal
from api.models.common import CommandOutcome
from api.models.users import (
    AccountUpdate,
    Deactivate,
    HistoryEvent,
    UserCreate,
    UserPage,
    UserPublic,
    UserUpdate,
)
from api.problems import Problem
from api.replies import command_fields, run_command
from pipeline.domain.users.commands import (
    CreateUser,
    DeactivateUser,
    DeleteUser,
    ReactivateUser,
    UpdateAccount,
    UpdateUser,
)
from pipeline.domain.values import UserRole, hash_password
from pipeline.projections import event_log, users

router = APIRouter(prefix="/api/admin/users", tags=["admin: users"])

_COMMAND_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued; the result will be at the Location URL."},
    404: {"description": "No such user (problem+json)."},
    409: {
        "description": "Conflict: duplicate, version mismatch, deleted, or the last active "
        "admin would lose the role or be deactivated/deleted (problem+json)."
    },
    422: {"description": "Invalid input (problem+json)."},
}
_SENSITIVE = ("password_hash",)


@router.post("", status_code=201, response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def create_user(
    body: UserCreate, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    """CreateUser. 201 with the new id; 409 duplicate email/username; 422 invalid."""
    hashed = await asyncio.to_thread(hash_password, body.password.get_secret_value())
    command = CreateUser(
        **command_fields(key, "", admin.user_id),
        username=body.username,
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        phone=body.phone,
        role=body.role.value,
        password_hash=hashed.value,
    )
    if body.role is UserRole.ADMIN:
        await mark_grant(services.redis, command.aggregate_id)
    return await run_command(
        services, command, success_status=201, location="/api/admin/users/{id}"
    )


@router.put("/{user_id}", response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def update_user(
    user_id: str,
    body: UserUpdate,
    services: ServicesDep,
    admin: AdminDep,
    roster: AdminRosterDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UpdateUser: names, phone, role. ``expected_version`` enables optimistic concurrency.
    409 ``last-admin`` for another role on the last active admin (``api/last_admin.py``)."""
    command = UpdateUser(
        **command_fields(key, user_id, admin.user_id, body.expected_version),
        first_name=body.first_name,
        last_name=body.last_name,
        phone=body.phone,
        role=body.role.value,
    )
    if body.role is UserRole.ADMIN:
        await mark_grant(services.redis, user_id)
        return await run_command(services, command)
    return await run_removal(services, roster, command)


@router.put("/{user_id}/account", response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def update_account(
    user_id: str,
    body: AccountUpdate,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UpdateAccount: a new email (reserved first: 409 if taken) and/or a new password."""
    if body.email is None and body.password is None:
        raise Problem(422, "validation", "give an email, a password, or both")
    hashed = None
    if body.password is not None:
        hashed = (await asyncio.to_thread(hash_password, body.password.get_secret_value())).value
    command = UpdateAccount(
        **command_fields(key, user_id, admin.user_id, body.expected_version),
        email=body.email,
        password_hash=hashed,
    )
    return await run_command(services, command)


@router.post("/{user_id}/deactivate", response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def deactivate_user(
    user_id: str,
    services: ServicesDep,
    admin: AdminDep,
    roster: AdminRosterDep,
    body: Deactivate | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """DeactivateUser. 409 ``last-admin`` for the last active admin."""
    body = body or Deactivate()
    command = DeactivateUser(
        **command_fields(key, user_id, admin.user_id, body.expected_version), reason=body.reason
    )
    return await run_removal(services, roster, command)


@router.post("/{user_id}/reactivate", response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def reactivate_user(
    user_id: str, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    await mark_grant(services.redis, user_id)  # an inactive admin becomes an active one
    return await run_command(
        services, ReactivateUser(**command_fields(key, user_id, admin.user_id))
    )


@router.delete("/{user_id}", response_model=CommandOutcome, responses=_COMMAND_RESPONSES)
async def delete_user(
    user_id: str,
    services: ServicesDep,
    admin: AdminDep,
    roster: AdminRosterDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Soft delete: the user stays readable with status ``deleted``; email stays taken.
    409 ``last-admin`` for the last active admin."""
    return await run_removal(
        services, roster, DeleteUser(**command_fields(key, user_id, admin.user_id))
    )


@router.get("", response_model=UserPage)
async def list_users(
    services: ServicesDep,
    _admin: AdminDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 20,
    role: Literal["student", "teacher", "admin", "analyst"] | None = None,
    status: Literal["active", "inactive", "deleted"] | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> UserPage:
    """Users from the ``users`` read model; deleted users only with ``status=deleted``."""
    rows, total = await users.page(
        services.clickhouse,
        limit=page_size,
        offset=(page - 1) * page_size,
        role=role,
        status=status,
        search=search,
    )
    return UserPage(
        items=[UserPublic(**r) for r in rows], total=total, page=page, page_size=page_size
    )


@router.get("/{user_id}", response_model=UserPublic)
async def get_user(
    user_id: str,
    services: ServicesDep,
    _admin: AdminDep,
    as_of: Annotated[
        datetime | None,
        Query(description="RFC 3339 instant (naive = UTC): the user as it was then."),
    ] = None,
) -> UserPublic:
    """The user now (the ``users`` read model), or with ``as_of`` as it was at that
    instant: its events up to then, from the ``event_log`` archive, folded with the
    aggregate's own ``evolve`` (seed 000). 404 for an unknown user, or one that did not
    exist yet at ``as_of``."""
    if as_of is None:
        row = await users.user(services.clickhouse, user_id)
    else:
        instant = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        row = await users.user_as_of(services.clickhouse, user_id, instant)
    if row is None:
        raise Problem(404, "not-found", f"no user {user_id}" + (f" at {as_of}" if as_of else ""))
    return UserPublic(**row)


@router.get("/{user_id}/history", response_model=list[HistoryEvent])
async def user_history(user_id: str, services: ServicesDep, _admin: AdminDep) -> list[HistoryEvent]:
    """Every event of the user from the ``event_log`` archive, oldest first.
    Password hashes are redacted."""
    rows = await event_log.history(services.clickhouse, "user", user_id)
    if not rows:
        raise Problem(404, "not-found", f"no events for user {user_id}")
    events = []
    for row in rows:
        data = orjson.loads(row["data"])
        for field in _SENSITIVE:
            if data.get(field):
                data[field] = "[redacted]"
        events.append(HistoryEvent(**{**row, "event_id": str(row["event_id"]), "data": data}))
    return events
