"""Partner management (seed 002): partners, their systems, API keys and event structures.

API keys are ``sk_live_`` + 32 random bytes (``secrets``), shown once in the answer to
AddSystem / RotateApiKey; events and read models keep only the SHA-256 and a prefix.
Every accepted command is answered once the Redis read model has applied it, so a key
works on the request after the answer that shows it (an SDK set up by a script).
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AdminDep, IdempotencyKey, Services, ServicesDep
from api.problems import Problem
from api.replies import (
    ReadModelVersion,
    command_fields,
    outcome_body,
    pending,
    raise_rejection,
    run_command,
    submit,
    until_applied,
)
from connectors.keys import API_KEY_PREFIX, PARTNER, get_json, hash_key, partner_version
from pipeline.domain.partners.commands import (
    AddSystem,
    CreatePartner,
    DeactivatePartner,
    DeactivateSystem,
    DefineEventStructure,
    ReactivateSystem,
    RemoveEventStructure,
    RotateApiKey,
    SetUnknownEventPolicy,
)
from pipeline.projections import tracking as tracking_tables
from pipeline.routing import command_id_for, new_aggregate_id

router = APIRouter(prefix="/api/admin/partners", tags=["admin: partners"])

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
KEY_PREFIX_CHARS = 12


class PartnerCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254)
    contact_person: str | None = Field(default=None, max_length=200)
    max_systems: int = Field(default=10, ge=1, le=100)


class SystemCreate(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    unknown_events: Literal["accept", "reject"] = "accept"


class StructureDefine(BaseModel):
    model_config = _STRICT
    json_schema: dict[str, Any] = Field(description="JSON Schema of the event's properties.")
    required: bool = Field(
        default=True, description="Reject non-conforming events (else accept, flagged)."
    )


class PolicySet(BaseModel):
    model_config = _STRICT
    policy: Literal["accept", "reject"]


def _read_model(services: Services) -> ReadModelVersion:
    return lambda partner_id: partner_version(services.redis, partner_id)


async def _run(services: Services, command: Any, success_status: int = 200) -> JSONResponse:
    return await run_command(
        services, command, success_status=success_status, read_model=_read_model(services)
    )


def new_api_key() -> tuple[str, str, str]:
    """(key, sha256 hex, display prefix). 32 random bytes from ``secrets``, base64url."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key), key[:KEY_PREFIX_CHARS]


async def _issue_key(services: Services, command: Any, key: str, status: int) -> JSONResponse:
    """Run a key-issuing command; the key is shown only if this request's command ran."""
    result = await submit(services, command)
    if result is None:
        return pending(command)
    raise_rejection(result)
    await until_applied(services, result, _read_model(services))
    if result.duplicate:
        raise Problem(
            409,
            "key-already-issued",
            "this request was already processed and its key shown once; rotate the key "
            "to get a new one",
            command_id=result.command_id,
        )
    body = {
        **outcome_body(result),
        "system_id": command.system_id,
        "api_key": key,
        "key_prefix": command.key_prefix,
    }
    return JSONResponse(body, status_code=status)


@router.post("", status_code=201)
async def create_partner(
    body: PartnerCreate, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    command = CreatePartner(**command_fields(key, "", admin.user_id), **body.model_dump())
    return await _run(services, command, 201)


@router.get("/{partner_id}")
async def get_partner(partner_id: str, services: ServicesDep, _admin: AdminDep) -> dict[str, Any]:
    """The partner's current state (systems with key prefixes, structures) from Redis."""
    stored = await get_json(services.redis, PARTNER.format(partner_id=partner_id))
    if stored is None:
        raise Problem(404, "not-found", f"no partner {partner_id}")
    state = stored["state"]
    for system in state["systems"]:
        system.pop("key_hash", None)
        system.pop("structure_versions", None)
        for structure in system["structures"].values():
            structure["json_schema"] = json.loads(structure["json_schema"])
    return {**state, "version": stored["version"]}


@router.post("/{partner_id}/deactivate")
async def deactivate_partner(
    partner_id: str, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    """Every key of the partner stops working within seconds."""
    command = DeactivatePartner(**command_fields(key, partner_id, admin.user_id))
    return await _run(services, command)


@router.post("/{partner_id}/systems", status_code=201)
async def add_system(
    partner_id: str,
    body: SystemCreate,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """201 with ``api_key`` (shown this once), ``system_id`` and ``key_prefix``; 409 over
    the partner's system limit or a duplicate name."""
    api_key, digest, prefix = new_api_key()
    fields = command_fields(key, partner_id, admin.user_id)
    command = AddSystem(
        **fields,
        system_id=new_aggregate_id(command_id_for(f"system:{fields['command_id']}")),
        name=body.name,
        description=body.description,
        key_hash=digest,
        key_prefix=prefix,
        unknown_events=body.unknown_events,
    )
    return await _issue_key(services, command, api_key, 201)


@router.post("/{partner_id}/systems/{system_id}/rotate-key")
async def rotate_key(
    partner_id: str,
    system_id: str,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A new key (shown once); the old one stops working within seconds."""
    api_key, digest, prefix = new_api_key()
    command = RotateApiKey(
        **command_fields(key, partner_id, admin.user_id),
        system_id=system_id,
        key_hash=digest,
        key_prefix=prefix,
    )
    return await _issue_key(services, command, api_key, 200)


@router.post("/{partner_id}/systems/{system_id}/{action}")
async def system_status(
    partner_id: str,
    system_id: str,
    action: Literal["deactivate", "reactivate"],
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    kind = DeactivateSystem if action == "deactivate" else ReactivateSystem
    command = kind(**command_fields(key, partner_id, admin.user_id), system_id=system_id)
    return await _run(services, command)


@router.put("/{partner_id}/systems/{system_id}/unknown-events")
async def set_policy(
    partner_id: str,
    system_id: str,
    body: PolicySet,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Accept or reject events whose name has no structure (default: accept)."""
    command = SetUnknownEventPolicy(
        **command_fields(key, partner_id, admin.user_id), system_id=system_id, policy=body.policy
    )
    return await _run(services, command)


@router.put("/{partner_id}/systems/{system_id}/event-structures/{event_name}")
async def define_structure(
    partner_id: str,
    system_id: str,
    event_name: str,
    body: StructureDefine,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Define or replace the JSON Schema for an event name's ``properties``."""
    command = DefineEventStructure(
        **command_fields(key, partner_id, admin.user_id),
        system_id=system_id,
        event_name=event_name,
        json_schema=json.dumps(body.json_schema, sort_keys=True),
        required=body.required,
    )
    return await _run(services, command)


@router.delete("/{partner_id}/systems/{system_id}/event-structures/{event_name}")
async def remove_structure(
    partner_id: str,
    system_id: str,
    event_name: str,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    command = RemoveEventStructure(
        **command_fields(key, partner_id, admin.user_id),
        system_id=system_id,
        event_name=event_name,
    )
    return await _run(services, command)


@router.get("/{partner_id}/systems/{system_id}/rejected-events")
async def rejected_events(
    partner_id: str,
    system_id: str,
    services: ServicesDep,
    _admin: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Events of the system that failed validation, newest first, with the reasons."""
    items, total = await tracking_tables.system_rejections(
        services.clickhouse, partner_id, system_id, limit
    )
    return {"items": items, "total": total}
