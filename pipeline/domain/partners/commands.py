"""Commands (imperative requests) for the partner aggregate.

A partner owns tracking *systems*; each system has one API key (only its SHA-256 hash and a
short display prefix are ever held here) and per-event-name *structures* (JSON Schemas) that
incoming tracking events are checked against.

Commands carry raw values exactly as sent; ``decide`` validates and normalises them and
answers with events or a :class:`~pipeline.domain.results.Rejection`. ``aggregate_id`` is the
partner id. Each concrete command has a ``type`` discriminator so pydantic can validate the
:data:`PartnerCommand` union directly (``pydantic.TypeAdapter(PartnerCommand)``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command


class CreatePartner(Command):
    """Register a partner. ``name``: 1-200 chars (stripped); ``email``: any valid address
    (lowercased); ``contact_person``: up to 200 chars, blank = None; ``max_systems``: 1-100.
    """

    type: Literal["CreatePartner"] = "CreatePartner"
    name: str
    email: str
    contact_person: str | None = None
    max_systems: int = 10


class AddSystem(Command):
    """Add a tracking system with its first API key.

    system_id: canonical lowercase UUID, chosen by the caller. name: 1-100 chars, unique among
    the partner's systems case-insensitively. description: up to 1000 chars, blank = None.
    key_hash: SHA-256 of the API key as 64 lowercase hex chars (the plain key never enters a
    command or event). key_prefix: 8-16 printable ASCII chars shown to identify the key, e.g.
    ``"sk_live_AbCd"``. unknown_events: what happens to events whose name has no structure.
    """

    type: Literal["AddSystem"] = "AddSystem"
    system_id: str
    name: str
    description: str | None = None
    key_hash: str
    key_prefix: str
    unknown_events: Literal["accept", "reject"] = "accept"


class RotateApiKey(Command):
    """Replace an active system's API key; the previous key stops working."""

    type: Literal["RotateApiKey"] = "RotateApiKey"
    system_id: str
    key_hash: str
    key_prefix: str


class DeactivateSystem(Command):
    """Disable an active system (its key stops working); structures are kept."""

    type: Literal["DeactivateSystem"] = "DeactivateSystem"
    system_id: str


class ReactivateSystem(Command):
    """Re-enable an inactive system with the key it had."""

    type: Literal["ReactivateSystem"] = "ReactivateSystem"
    system_id: str


class SetUnknownEventPolicy(Command):
    """Set what happens to a system's events whose name has no structure: ``"accept"``
    (recorded, ``structure_version`` null) or ``"reject"`` (dead-lettered).
    """

    type: Literal["SetUnknownEventPolicy"] = "SetUnknownEventPolicy"
    system_id: str
    policy: Literal["accept", "reject"]


class DefineEventStructure(Command):
    """Define (or redefine) the structure of one event name of an active system.

    event_name: 1-100 chars of ``[A-Za-z0-9_.:\\- ]`` after stripping. json_schema: JSON text
    (at most 64 KiB as UTF-8) of a JSON Schema object that describes the event's
    ``properties`` object. required: True rejects non-conforming events to the dead-letter
    topic; False records them flagged ``schema_valid=false``.
    """

    type: Literal["DefineEventStructure"] = "DefineEventStructure"
    system_id: str
    event_name: str
    json_schema: str
    required: bool


class RemoveEventStructure(Command):
    """Remove the structure of ``event_name``; such events then fall under the system's
    unknown-event policy.
    """

    type: Literal["RemoveEventStructure"] = "RemoveEventStructure"
    system_id: str
    event_name: str


class SetAllowedOrigins(Command):
    """Set the web origins whose pages may send a system's events (CORS, checked at the
    edge against the request's ``Origin``). ``origins``: at most 50 of
    ``scheme://host[:port]`` (http or https; ``https://*.example.com`` covers the
    subdomains of example.com); an empty list allows every origin, the default, since a
    write key is public by design. A request without ``Origin`` (a server) is not checked.
    """

    type: Literal["SetAllowedOrigins"] = "SetAllowedOrigins"
    system_id: str
    origins: list[str]


class IssueReadToken(Command):
    """Issue a read token: a secret that reads the partner's analytics and nothing else
    (write keys only write). token_id: canonical UUID chosen by the caller. name: 1-100
    chars. token_hash: SHA-256 hex of the token (the plain token never enters a command or
    event). token_prefix: 8-16 printable ASCII chars shown to identify it (``rt_live_AbCd``).
    At most ``MAX_READ_TOKENS`` active tokens per partner.
    """

    type: Literal["IssueReadToken"] = "IssueReadToken"
    token_id: str
    name: str
    token_hash: str
    token_prefix: str


class RevokeReadToken(Command):
    """Revoke an active read token: it is refused from the next request on."""

    type: Literal["RevokeReadToken"] = "RevokeReadToken"
    token_id: str


class DeactivatePartner(Command):
    """Deactivate the partner (terminal): every active system is deactivated with it."""

    type: Literal["DeactivatePartner"] = "DeactivatePartner"


PartnerCommand = Annotated[
    CreatePartner
    | AddSystem
    | RotateApiKey
    | DeactivateSystem
    | ReactivateSystem
    | SetUnknownEventPolicy
    | DefineEventStructure
    | RemoveEventStructure
    | SetAllowedOrigins
    | IssueReadToken
    | RevokeReadToken
    | DeactivatePartner,
    Field(discriminator="type"),
]
