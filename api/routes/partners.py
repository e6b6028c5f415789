"""Partner management (seed 002): partners, their systems, write keys, allowed web
origins, event structures and read tokens.

Two secrets, one purpose each (Segment's write keys versus its access tokens): a system's
write key (``sk_live_`` + 32 random bytes) only sends events and is public by design, since
web pages embed it; a partner's read token (``rt_live_`` + 32 random bytes) only reads the
partner's analytics. Each is shown once, in the answer that issues it; events and read
models keep only the SHA-256 and a prefix. Every accepted command is answered once the
Redis read model has applied it, so a key or token works on the request after the answer
that shows it, and a revoked token is refused on the request after the revocation's.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import AdminDep, IdempotencyKey, PartnerManagerDep, Services, ServicesDep
from api.models.partners import (
    OriginsSet,
    PartnerCreate,
    PartnerPage,
    PartnerSummary,
    PolicySet,
    ReadTokenCreate,
    StructureDefine,
    SystemCreate,
)
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
from pipeline.domain.partners import commands
from pipeline.projections.partner_keys import listing
from pipeline.projections.partner_keys.lookups import (
    API_KEY_PREFIX,
    PARTNER,
    READ_TOKEN_PREFIX,
    get_json,
    hash_key,
    partner_version,
)
from pipeline.projections.tracking import tables as tracking_tables
from pipeline.write.routing import command_id_for, new_aggregate_id

router = APIRouter(prefix="/api/admin/partners", tags=["admin: partners"])

KEY_PREFIX_CHARS = 12


def _read_model(services: Services) -> ReadModelVersion:
    return lambda partner_id: partner_version(services.redis, partner_id)


async def _run(
    services: Services, command: Any, success_status: int = 200, location: str | None = None
) -> JSONResponse:
    return await run_command(
        services, command, success_status=success_status, read_model=_read_model(services),
        location=location,
    )  # fmt: skip


def new_secret(prefix: str = API_KEY_PREFIX) -> tuple[str, str, str]:
    """(secret, sha256 hex, display prefix): ``prefix`` + 32 random bytes from
    ``secrets``, base64url."""
    secret = prefix + secrets.token_urlsafe(32)
    return secret, hash_key(secret), secret[:KEY_PREFIX_CHARS]


def new_api_key() -> tuple[str, str, str]:
    """A system's write key: (key, sha256 hex, display prefix)."""
    return new_secret(API_KEY_PREFIX)


async def _issue_secret(
    services: Services,
    command: Any,
    shown: dict[str, Any],
    status: int,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Run a command that issues a secret; ``shown`` (the secret and what names it) is in
    the answer only if this request's command ran: a replay gets 409, never the secret."""
    result = await submit(services, command)
    if result is None:
        return pending(command)
    raise_rejection(result)
    await until_applied(services, result, _read_model(services))
    if result.duplicate:
        raise Problem(
            409,
            "key-already-issued",
            "this request was already processed and its secret shown once; issue a new one "
            "(rotate a key, or issue another read token)",
            command_id=result.command_id,
        )
    return JSONResponse({**outcome_body(result), **shown}, status_code=status, headers=headers)


async def _issue_key(
    services: Services, command: Any, key: str, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    shown = {"system_id": command.system_id, "api_key": key, "key_prefix": command.key_prefix}
    return await _issue_secret(services, command, shown, status, headers)


@router.post("", status_code=201)
async def create_partner(
    body: PartnerCreate, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    command = commands.CreatePartner(**command_fields(key, "", admin.user_id), **body.model_dump())
    return await _run(services, command, 201, "/api/admin/partners/{id}")


@router.get("", response_model=PartnerPage)
async def list_partners(
    services: ServicesDep,
    _admin: AdminDep,
    search: Annotated[
        str | None, Query(max_length=200, description="A part of the name or e-mail.")
    ] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
) -> PartnerPage:
    """Partners by name, with their status and how many systems (active ones too) they
    have (``pipeline/projections/partner_keys/listing.py``)."""
    rows, total = await listing.page(
        services.clickhouse, services.redis, search=search, limit=page_size,
        offset=(page - 1) * page_size,
    )  # fmt: skip
    return PartnerPage(
        items=[PartnerSummary(**r) for r in rows], total=total, page=page, page_size=page_size
    )


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
            structure["json_schema"] = orjson.loads(structure["json_schema"])
    state["read_tokens"] = [_token_shown(t) for t in state.get("read_tokens", [])]
    return {**state, "version": stored["version"]}


def _token_shown(token: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in token.items() if k != "token_hash"}


@router.post("/{partner_id}/deactivate")
async def deactivate_partner(
    partner_id: str, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    """Every key of the partner stops working within seconds."""
    command = commands.DeactivatePartner(**command_fields(key, partner_id, admin.user_id))
    return await _run(services, command)


@router.post("/{partner_id}/systems", status_code=201)
async def add_system(
    partner_id: str,
    body: SystemCreate,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """201 with ``api_key`` (shown this once), ``system_id`` and ``key_prefix``, and
    ``Location`` the partner that lists its systems; 409 over the partner's system limit
    or a duplicate name."""
    api_key, digest, prefix = new_api_key()
    fields = command_fields(key, partner_id, admin.user_id)
    command = commands.AddSystem(
        **fields,
        system_id=new_aggregate_id(command_id_for(f"system:{fields['command_id']}")),
        name=body.name,
        description=body.description,
        key_hash=digest,
        key_prefix=prefix,
        unknown_events=body.unknown_events,
    )
    location = {"Location": f"/api/admin/partners/{partner_id}"}
    return await _issue_key(services, command, api_key, 201, location)


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
    command = commands.RotateApiKey(
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
    kind = commands.DeactivateSystem if action == "deactivate" else commands.ReactivateSystem
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
    command = commands.SetUnknownEventPolicy(
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
    command = commands.DefineEventStructure(
        **command_fields(key, partner_id, admin.user_id),
        system_id=system_id,
        event_name=event_name,
        json_schema=orjson.dumps(body.json_schema, option=orjson.OPT_SORT_KEYS).decode(),
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
    command = commands.RemoveEventStructure(
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


@router.put("/{partner_id}/systems/{system_id}/allowed-origins")
async def set_allowed_origins(
    partner_id: str,
    system_id: str,
    body: OriginsSet,
    services: ServicesDep,
    admin: AdminDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """The web origins whose pages may send this system's events (CORS on ``/v1/*``): a
    request whose ``Origin`` is not listed is refused 403 ``origin-not-allowed`` and
    stores nothing. ``[]`` (the default) allows every origin: write keys are public by
    design. A request without ``Origin`` (a server-side SDK) is not checked. 422 for an
    entry that is not ``scheme://host[:port]``."""
    command = commands.SetAllowedOrigins(
        **command_fields(key, partner_id, admin.user_id), system_id=system_id,
        origins=body.origins,
    )  # fmt: skip
    return await _run(services, command)


@router.post("/{partner_id}/read-tokens", status_code=201)
async def issue_read_token(
    partner_id: str,
    body: ReadTokenCreate,
    services: ServicesDep,
    caller: PartnerManagerDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A read token for this partner's analytics (every ``/v1/analytics/*`` route, scoped
    to the partner's systems), for an admin or for the partner itself with a read token of
    its own. 201 with ``token`` (shown this once), ``token_id`` and ``token_prefix``; it
    works from the next request on. 409 past 20 active tokens."""
    token, digest, prefix = new_secret(READ_TOKEN_PREFIX)
    fields = command_fields(key, partner_id, caller)
    token_id = new_aggregate_id(command_id_for(f"read-token:{fields['command_id']}"))
    command = commands.IssueReadToken(
        **fields, token_id=token_id, name=body.name, token_hash=digest, token_prefix=prefix
    )
    shown = {"token_id": token_id, "name": body.name, "token": token, "token_prefix": prefix}
    location = {"Location": f"/api/admin/partners/{partner_id}/read-tokens/{token_id}"}
    return await _issue_secret(services, command, shown, 201, location)


async def _partner_state(services: Services, partner_id: str) -> dict[str, Any]:
    stored = await get_json(services.redis, PARTNER.format(partner_id=partner_id))
    if stored is None:
        raise Problem(404, "not-found", f"no partner {partner_id}")
    return stored["state"]


@router.get("/{partner_id}/read-tokens")
async def list_read_tokens(
    partner_id: str, services: ServicesDep, _caller: PartnerManagerDep
) -> dict[str, Any]:
    """The partner's read tokens, active and revoked, in issue order: ``token_id``,
    ``name``, ``token_prefix``, ``active``, ``issued_at``, ``revoked_at``. Never a token
    or its hash."""
    state = await _partner_state(services, partner_id)
    return {"items": [_token_shown(t) for t in state.get("read_tokens", [])]}


@router.get("/{partner_id}/read-tokens/{token_id}")
async def get_read_token(
    partner_id: str, token_id: str, services: ServicesDep, _caller: PartnerManagerDep
) -> dict[str, Any]:
    state = await _partner_state(services, partner_id)
    for token in state.get("read_tokens", []):
        if token["token_id"] == token_id:
            return _token_shown(token)
    raise Problem(404, "not-found", f"no read token {token_id} of partner {partner_id}")


@router.delete("/{partner_id}/read-tokens/{token_id}")
async def revoke_read_token(
    partner_id: str,
    token_id: str,
    services: ServicesDep,
    caller: PartnerManagerDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Revoke a read token: refused (401 ``revoked-token``) from the next request on, on
    every API process (tokens are not cached). 404 unknown, 409 already revoked."""
    command = commands.RevokeReadToken(**command_fields(key, partner_id, caller), token_id=token_id)
    return await _run(services, command)
