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

from pipeline.domain.table_form import from_table, to_table


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


def state_to_dict(partner: Partner) -> dict[str, Any]:
    """JSON-safe dict of ``partner`` (``table_form.to_table``): datetimes as ISO-8601
    strings, enums as their values, ``systems`` as a list in insertion order, ``structures``
    as ``{event_name: {json_schema, required, version}}``, ``read_tokens`` as a list in issue
    order (hashes included: the API strips them before showing a state).
    """
    return {
        **to_table(partner),
        # lists, not mappings: each item carries its own id, and a list keeps the order
        "systems": [to_table(s) for s in partner.systems.values()],
        "read_tokens": [to_table(t) for t in partner.read_tokens.values()],
    }


def state_from_dict(d: dict[str, Any]) -> Partner:
    """Inverse of :func:`state_to_dict`. Raises ``KeyError``/``ValueError`` on malformed input.
    A form stored before origins and read tokens existed lacks their keys: none of either."""
    systems = [from_table(PartnerSystem, s) for s in d["systems"]]
    tokens = [from_table(ReadToken, t) for t in d.get("read_tokens", ())]
    return from_table(
        Partner,
        d,
        systems={s.system_id: s for s in systems},
        read_tokens={t.token_id: t for t in tokens},
    )
