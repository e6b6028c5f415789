"""Events (past-tense facts) of the partner aggregate and their :data:`PartnerEvent` union:
each one's fields are the ``data`` record of
``schemas/avro/partner/<event_type>.v<schema_version>.avsc``
(:class:`~pipeline.domain.event.DomainEvent`: how a published event may change). Key
material appears only as SHA-256 hex hashes and display prefixes, never as plain keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.domain.event import DomainEvent


class PartnerCreated(DomainEvent, version=2):
    """A partner was registered. ``email`` is lowercased; ``max_systems`` is 1-100."""

    partner_id: str
    name: str
    email: str
    contact_person: str | None
    max_systems: int


class SystemAdded(DomainEvent, version=2):
    """A system was added with its first API key (``key_hash``: SHA-256, 64 lowercase hex)
    and unknown-event policy ``"accept"`` or ``"reject"``.
    """

    system_id: str
    name: str
    description: str | None
    key_hash: str
    key_prefix: str
    unknown_events: str


@dataclass(frozen=True, slots=True)
class SystemKey:
    """A system and the key an event changes (what the key read models act on): the first
    fields, in order, of the three events below."""

    system_id: str
    key_hash: str


class ApiKeyRotated(SystemKey, DomainEvent, version=2):
    """A system's key was replaced by ``key_hash``; ``previous_key_hash`` lets read models
    revoke the old one."""

    key_prefix: str
    previous_key_hash: str


class SystemDeactivated(SystemKey, DomainEvent, version=2):
    """A system was disabled; ``key_hash`` is the key that stops working."""


class SystemReactivated(SystemKey, DomainEvent, version=2):
    """A system was re-enabled; ``key_hash`` is the key that works again."""


class UnknownEventPolicySet(DomainEvent, version=2):
    """A system's policy for events without a structure changed to ``"accept"``/``"reject"``."""

    system_id: str
    policy: str


class EventStructureDefined(DomainEvent, version=2):
    """The structure of ``event_name`` was (re)defined.

    json_schema: JSON Schema text for the event's ``properties``. required: reject (True) or
    flag (False) non-conforming events. structure_version: 1 on the first definition of the
    name in this system, +1 on each redefinition (also after a removal: never reused).
    """

    system_id: str
    event_name: str
    json_schema: str
    required: bool
    structure_version: int


class EventStructureRemoved(DomainEvent, version=2):
    """The structure of ``event_name`` was removed from the system."""

    system_id: str
    event_name: str


class AllowedOriginsSet(DomainEvent, version=1):
    """The web origins allowed to send a system's events became ``origins``: normalised
    ``scheme://host[:port]`` texts (lowercase, default port dropped, ``*.`` for
    subdomains), without duplicates; empty = every origin."""

    system_id: str
    origins: tuple[str, ...]


class ReadTokenIssued(DomainEvent, version=1):
    """A read token for the partner's analytics was issued (``token_hash``: SHA-256, 64
    lowercase hex; the plain token is never recorded)."""

    token_id: str
    name: str
    token_hash: str
    token_prefix: str


class ReadTokenRevoked(DomainEvent, version=1):
    """A read token was revoked; ``token_hash`` is the token that stops working."""

    token_id: str
    token_hash: str


class PartnerDeactivated(DomainEvent, version=2):
    """The partner was deactivated (terminal). Its systems' ``SystemDeactivated`` events
    precede this one in the same command.
    """


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
