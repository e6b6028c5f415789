"""Events (past-tense facts) of the partner aggregate.

Each event's dataclass fields are exactly the fields of the ``data`` record of its Avro schema
``schemas/avro/partner/<event_type>.v<schema_version>.avsc``. Events are never changed once
published: a change means a new schema version plus an upcaster (see ``schemas.upcasting``).
Key material appears only as SHA-256 hex hashes and display prefixes, never as plain keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "AllowedOriginsSet",
    "ApiKeyRotated",
    "EventStructureDefined",
    "EventStructureRemoved",
    "PartnerCreated",
    "PartnerDeactivated",
    "PartnerEvent",
    "ReadTokenIssued",
    "ReadTokenRevoked",
    "SystemAdded",
    "SystemDeactivated",
    "SystemReactivated",
    "UnknownEventPolicySet",
]


@dataclass(frozen=True, slots=True)
class PartnerCreated:
    """A partner was registered. ``email`` is lowercased; ``max_systems`` is 1-100."""

    event_type: ClassVar[str] = "PartnerCreated"
    schema_version: ClassVar[int] = 2

    partner_id: str
    name: str
    email: str
    contact_person: str | None
    max_systems: int


@dataclass(frozen=True, slots=True)
class SystemAdded:
    """A system was added with its first API key (``key_hash``: SHA-256, 64 lowercase hex)
    and unknown-event policy ``"accept"`` or ``"reject"``.
    """

    event_type: ClassVar[str] = "SystemAdded"
    schema_version: ClassVar[int] = 2

    system_id: str
    name: str
    description: str | None
    key_hash: str
    key_prefix: str
    unknown_events: str


@dataclass(frozen=True, slots=True)
class ApiKeyRotated:
    """A system's key was replaced; ``previous_key_hash`` lets read models revoke the old one."""

    event_type: ClassVar[str] = "ApiKeyRotated"
    schema_version: ClassVar[int] = 2

    system_id: str
    key_hash: str
    key_prefix: str
    previous_key_hash: str


@dataclass(frozen=True, slots=True)
class SystemDeactivated:
    """A system was disabled; ``key_hash`` is the key that stops working."""

    event_type: ClassVar[str] = "SystemDeactivated"
    schema_version: ClassVar[int] = 2

    system_id: str
    key_hash: str


@dataclass(frozen=True, slots=True)
class SystemReactivated:
    """A system was re-enabled; ``key_hash`` is the key that works again."""

    event_type: ClassVar[str] = "SystemReactivated"
    schema_version: ClassVar[int] = 2

    system_id: str
    key_hash: str


@dataclass(frozen=True, slots=True)
class UnknownEventPolicySet:
    """A system's policy for events without a structure changed to ``"accept"``/``"reject"``."""

    event_type: ClassVar[str] = "UnknownEventPolicySet"
    schema_version: ClassVar[int] = 2

    system_id: str
    policy: str


@dataclass(frozen=True, slots=True)
class EventStructureDefined:
    """The structure of ``event_name`` was (re)defined.

    json_schema: JSON Schema text for the event's ``properties``. required: reject (True) or
    flag (False) non-conforming events. structure_version: 1 on the first definition of the
    name in this system, +1 on each redefinition (also after a removal: never reused).
    """

    event_type: ClassVar[str] = "EventStructureDefined"
    schema_version: ClassVar[int] = 2

    system_id: str
    event_name: str
    json_schema: str
    required: bool
    structure_version: int


@dataclass(frozen=True, slots=True)
class EventStructureRemoved:
    """The structure of ``event_name`` was removed from the system."""

    event_type: ClassVar[str] = "EventStructureRemoved"
    schema_version: ClassVar[int] = 2

    system_id: str
    event_name: str


@dataclass(frozen=True, slots=True)
class AllowedOriginsSet:
    """The web origins allowed to send a system's events became ``origins``: normalised
    ``scheme://host[:port]`` texts (lowercase, default port dropped, ``*.`` for
    subdomains), without duplicates; empty = every origin."""

    event_type: ClassVar[str] = "AllowedOriginsSet"
    schema_version: ClassVar[int] = 1

    system_id: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadTokenIssued:
    """A read token for the partner's analytics was issued (``token_hash``: SHA-256, 64
    lowercase hex; the plain token is never recorded)."""

    event_type: ClassVar[str] = "ReadTokenIssued"
    schema_version: ClassVar[int] = 1

    token_id: str
    name: str
    token_hash: str
    token_prefix: str


@dataclass(frozen=True, slots=True)
class ReadTokenRevoked:
    """A read token was revoked; ``token_hash`` is the token that stops working."""

    event_type: ClassVar[str] = "ReadTokenRevoked"
    schema_version: ClassVar[int] = 1

    token_id: str
    token_hash: str


@dataclass(frozen=True, slots=True)
class PartnerDeactivated:
    """The partner was deactivated (terminal). Its systems' ``SystemDeactivated`` events
    precede this one in the same command.
    """

    event_type: ClassVar[str] = "PartnerDeactivated"
    schema_version: ClassVar[int] = 2


PartnerEvent = (
    PartnerCreated
    | SystemAdded
    | ApiKeyRotated
    | SystemDeactivated
    | SystemReactivated
    | UnknownEventPolicySet
    | EventStructureDefined
    | EventStructureRemoved
    | AllowedOriginsSet
    | ReadTokenIssued
    | ReadTokenRevoked
    | PartnerDeactivated
)
