"""State of the partner aggregate and its JSON-safe table form.

State mappings are plain dicts that are never mutated: ``evolve`` builds new ones, so older
states stay valid. States therefore compare with ``==`` but are not hashable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class PartnerStatus(StrEnum):
    """Lifecycle: ACTIVE -> INACTIVE (terminal: an inactive partner accepts no command)."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class SystemStatus(StrEnum):
    """ACTIVE <-> INACTIVE; an inactive system's key does not authenticate."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class UnknownEventPolicy(StrEnum):
    """What happens to a tracking event whose name has no structure in its system."""

    ACCEPT = "accept"  # recorded with schema_valid=true, structure_version=null
    REJECT = "reject"  # sent to the dead-letter topic


@dataclass(frozen=True, slots=True, kw_only=True)
class EventStructure:
    """The JSON Schema (text) for one event name's ``properties``, whether conformance is
    required, and its structure version (>= 1).
    """

    json_schema: str
    required: bool
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PartnerSystem:
    """One tracking system of a partner.

    key_hash: SHA-256 hex of the current API key; key_prefix: its display prefix.
    structures: event name -> current :class:`EventStructure`.
    structure_versions: event name -> highest version ever defined, kept after a removal so
        a redefined name continues from it (a version number always means one schema).
    """

    system_id: str
    name: str
    description: str | None
    key_hash: str
    key_prefix: str
    status: SystemStatus
    unknown_events: UnknownEventPolicy
    structures: Mapping[str, EventStructure] = field(default_factory=dict)
    structure_versions: Mapping[str, int] = field(default_factory=dict)
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadToken:
    """A secret that reads the partner's analytics (never writes events).

    token_hash: SHA-256 hex of the token; token_prefix: its display prefix. active: False
    once revoked (kept, so a listing shows what was revoked and when). issued_at /
    revoked_at: tz-aware UTC, revoked_at None while active.
    """

    token_id: str
    name: str
    token_hash: str
    token_prefix: str
    active: bool
    issued_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Partner:
    """Current state of one partner, folded from its events.

    ``systems`` maps system id -> :class:`PartnerSystem` in the order they were added;
    datetimes are tz-aware UTC.
    """

    partner_id: str
    name: str
    email: str
    contact_person: str | None
    max_systems: int
    status: PartnerStatus
    systems: Mapping[str, PartnerSystem]
    created_at: datetime
    updated_at: datetime
    read_tokens: Mapping[str, ReadToken] = field(default_factory=dict)


def _system_to_dict(system: PartnerSystem) -> dict[str, Any]:
    return {
        "system_id": system.system_id,
        "name": system.name,
        "description": system.description,
        "key_hash": system.key_hash,
        "key_prefix": system.key_prefix,
        "status": system.status.value,
        "unknown_events": system.unknown_events.value,
        "structures": {
            name: {"json_schema": s.json_schema, "required": s.required, "version": s.version}
            for name, s in system.structures.items()
        },
        "structure_versions": dict(system.structure_versions),
        "allowed_origins": list(system.allowed_origins),
    }


def _system_from_dict(d: dict[str, Any]) -> PartnerSystem:
    return PartnerSystem(
        system_id=d["system_id"],
        name=d["name"],
        description=d["description"],
        key_hash=d["key_hash"],
        key_prefix=d["key_prefix"],
        status=SystemStatus(d["status"]),
        unknown_events=UnknownEventPolicy(d["unknown_events"]),
        structures={
            name: EventStructure(
                json_schema=s["json_schema"], required=bool(s["required"]), version=s["version"]
            )
            for name, s in d["structures"].items()
        },
        structure_versions={name: int(v) for name, v in d["structure_versions"].items()},
        # states stored before origins and read tokens existed lack the keys
        allowed_origins=tuple(d.get("allowed_origins", ())),
    )


def _token_to_dict(token: ReadToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "token_hash": token.token_hash,
        "token_prefix": token.token_prefix,
        "active": token.active,
        "issued_at": token.issued_at.isoformat(),
        "revoked_at": None if token.revoked_at is None else token.revoked_at.isoformat(),
    }


def _token_from_dict(d: dict[str, Any]) -> ReadToken:
    revoked = d.get("revoked_at")
    return ReadToken(
        token_id=d["token_id"],
        name=d["name"],
        token_hash=d["token_hash"],
        token_prefix=d["token_prefix"],
        active=bool(d["active"]),
        issued_at=datetime.fromisoformat(d["issued_at"]),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )


def state_to_dict(partner: Partner) -> dict[str, Any]:
    """JSON-safe dict of ``partner``: datetimes as ISO-8601 strings, enums as their values,
    ``systems`` as a list in insertion order, ``structures`` as ``{event_name: {json_schema,
    required, version}}``, ``read_tokens`` as a list in issue order (hashes included: the
    API strips them before showing a state).
    """
    return {
        "partner_id": partner.partner_id,
        "name": partner.name,
        "email": partner.email,
        "contact_person": partner.contact_person,
        "max_systems": partner.max_systems,
        "status": partner.status.value,
        "systems": [_system_to_dict(s) for s in partner.systems.values()],
        "created_at": partner.created_at.isoformat(),
        "updated_at": partner.updated_at.isoformat(),
        "read_tokens": [_token_to_dict(t) for t in partner.read_tokens.values()],
    }


def state_from_dict(d: dict[str, Any]) -> Partner:
    """Inverse of :func:`state_to_dict`. Raises ``KeyError``/``ValueError`` on malformed input."""
    systems = [_system_from_dict(s) for s in d["systems"]]
    return Partner(
        partner_id=d["partner_id"],
        name=d["name"],
        email=d["email"],
        contact_person=d["contact_person"],
        max_systems=int(d["max_systems"]),
        status=PartnerStatus(d["status"]),
        systems={s.system_id: s for s in systems},
        created_at=datetime.fromisoformat(d["created_at"]),
        updated_at=datetime.fromisoformat(d["updated_at"]),
        read_tokens={t.token_id: t for t in map(_token_from_dict, d.get("read_tokens", ()))},
    )
