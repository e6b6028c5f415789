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

__all__ = [
    "EventStructure",
    "Partner",
    "PartnerStatus",
    "PartnerSystem",
    "SystemStatus",
    "UnknownEventPolicy",
    "state_from_dict",
    "state_to_dict",
]


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
    )


def state_to_dict(partner: Partner) -> dict[str, Any]:
    """JSON-safe dict of ``partner``: datetimes as ISO-8601 strings, enums as their values,
    ``systems`` as a list in insertion order, ``structures`` as ``{event_name: {json_schema,
    required, version}}``.
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
    )
