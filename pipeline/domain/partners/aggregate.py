"""The partner aggregate: ``decide`` (command -> events | Rejection) and ``evolve``
(state + event -> state). The state types and their table form live in
``pipeline.domain.partners.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from functools import singledispatch
from typing import Any

from pipeline.domain import dispatch
from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.partners import commands, events, origins, rules
from pipeline.domain.partners.events import PartnerEvent
from pipeline.domain.partners.state import (
    EventStructure,
    Partner,
    PartnerStatus,
    PartnerSystem,
    ReadToken,
    SystemStatus,
    UnknownEventPolicy,
)
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import Email, canonical_uuid

AGGREGATE_TYPE = "partner"


def _refuse(reason: RejectionReason, message: str, field: str | None = None) -> dispatch.Refused:
    return dispatch.Refused(Rejection(reason, message, field))


def decide(state: Partner | None, command: Command) -> list[PartnerEvent] | Rejection:
    """Decide the events for ``command`` given ``state`` (None = partner does not exist).

    Returns a list of events (possibly empty: an accepted no-op) or a ``Rejection``:
    ALREADY_EXISTS (create on existing; duplicate system id, name or key), NOT_FOUND (anything
    else on None; unknown ``system_id`` or ``event_name``, ``field`` set), INVALID_STATE
    (deactivated partner; inactive system; system limit, ``field="max_systems"``), INVALID
    (bad input; ``field`` set). Does not check ``expected_version`` or idempotency;
    ``pipeline.domain.handling.handle`` does.
    """
    return dispatch.decide(_precondition, _decide, state, command)


def _refusal(state: Partner) -> Rejection | None:
    if state.status is PartnerStatus.INACTIVE:
        return Rejection(RejectionReason.INVALID_STATE, "partner is deactivated")
    return None


_precondition = dispatch.precondition("partner", commands.CreatePartner, _refusal)


_decide = singledispatch(dispatch.no_decide_rule)


def _system(state: Partner, raw_id: Any) -> PartnerSystem:
    system_id = rules.require_str("system_id", raw_id)
    system = state.systems.get(system_id)
    if system is None:
        raise _refuse(RejectionReason.NOT_FOUND, f"system {system_id} not found", "system_id")
    return system


def _active_system(state: Partner, raw_id: Any) -> PartnerSystem:
    system = _system(state, raw_id)
    if system.status is SystemStatus.INACTIVE:
        raise _refuse(RejectionReason.INVALID_STATE, f"system {system.system_id} is inactive")
    return system


def _key_not_in_use(state: Partner, key_hash: str) -> None:
    # Two systems sharing a key would make key -> system lookups ambiguous.
    for other in state.systems.values():
        if other.key_hash == key_hash:
            message = f"key_hash is already the key of system {other.system_id}"
            raise _refuse(RejectionReason.ALREADY_EXISTS, message, "key_hash")


@_decide.register
def _(command: commands.CreatePartner, state: None) -> list[PartnerEvent]:
    return [
        events.PartnerCreated(
            partner_id=canonical_uuid("aggregate_id", command.aggregate_id),
            name=rules.text("name", command.name, rules.PARTNER_NAME_MAX_LENGTH),
            email=Email.parse(command.email).value,
            contact_person=rules.optional_text(
                "contact_person", command.contact_person, rules.CONTACT_PERSON_MAX_LENGTH
            ),
            max_systems=rules.max_systems(command.max_systems),
        )
    ]


@_decide.register
def _(command: commands.AddSystem, state: Partner) -> list[PartnerEvent]:
    event = events.SystemAdded(
        system_id=canonical_uuid("system_id", command.system_id),
        name=rules.text("name", command.name, rules.SYSTEM_NAME_MAX_LENGTH),
        description=rules.optional_text(
            "description", command.description, rules.DESCRIPTION_MAX_LENGTH
        ),
        key_hash=rules.key_hash(command.key_hash),
        key_prefix=rules.key_prefix(command.key_prefix),
        unknown_events=_policy("unknown_events", command.unknown_events).value,
    )
    if event.system_id in state.systems:
        message = f"system {event.system_id} already exists"
        raise _refuse(RejectionReason.ALREADY_EXISTS, message, "system_id")
    folded = event.name.casefold()
    if any(s.name.casefold() == folded for s in state.systems.values()):
        message = f"a system named {event.name!r} already exists"
        raise _refuse(RejectionReason.ALREADY_EXISTS, message, "name")
    _key_not_in_use(state, event.key_hash)
    if len(state.systems) >= state.max_systems:
        message = f"the partner already has {state.max_systems} systems, its limit (max_systems)"
        raise _refuse(RejectionReason.INVALID_STATE, message, "max_systems")
    return [event]


@_decide.register
def _(command: commands.RotateApiKey, state: Partner) -> list[PartnerEvent]:
    system = _active_system(state, command.system_id)
    key_hash = rules.key_hash(command.key_hash)
    key_prefix = rules.key_prefix(command.key_prefix)
    if key_hash == system.key_hash:
        # A read model applies "revoke previous, allow new": equal hashes would revoke the key.
        raise InvalidValue("key_hash", "must differ from the current key")
    _key_not_in_use(state, key_hash)
    return [
        events.ApiKeyRotated(
            system_id=system.system_id,
            key_hash=key_hash,
            key_prefix=key_prefix,
            previous_key_hash=system.key_hash,
        )
    ]


def _switch_system(
    to: SystemStatus, event: type[events.SystemDeactivated | events.SystemReactivated]
) -> Callable[[Any, Partner], list[PartnerEvent]]:
    """The rule of a command that only switches a system to ``to``, recorded as ``event``;
    refused (INVALID_STATE) when the system already is."""

    def rule(command: Any, state: Partner) -> list[PartnerEvent]:
        system = _system(state, command.system_id)
        if system.status is to:
            raise _refuse(RejectionReason.INVALID_STATE, f"system is already {to.value}")
        return [event(system_id=system.system_id, key_hash=system.key_hash)]

    return rule


_decide.register(
    commands.DeactivateSystem, _switch_system(SystemStatus.INACTIVE, events.SystemDeactivated)
)
_decide.register(
    commands.ReactivateSystem, _switch_system(SystemStatus.ACTIVE, events.SystemReactivated)
)


def _policy(name: str, raw: Any) -> UnknownEventPolicy:
    try:
        return UnknownEventPolicy(raw)
    except ValueError as exc:
        allowed = ", ".join(p.value for p in UnknownEventPolicy)
        raise InvalidValue(name, f"must be one of: {allowed}") from exc


@_decide.register
def _(command: commands.SetUnknownEventPolicy, state: Partner) -> list[PartnerEvent]:
    system = _system(state, command.system_id)
    policy = _policy("policy", command.policy)
    if policy is system.unknown_events:
        return []
    return [events.UnknownEventPolicySet(system_id=system.system_id, policy=policy.value)]


@_decide.register
def _(command: commands.DefineEventStructure, state: Partner) -> list[PartnerEvent]:
    system = _active_system(state, command.system_id)
    event_name = rules.event_name(command.event_name)
    json_schema = rules.json_schema(command.json_schema)
    required = rules.boolean("required", command.required)
    current = system.structures.get(event_name)
    if current is not None and (current.json_schema, current.required) == (json_schema, required):
        return []
    return [
        events.EventStructureDefined(
            system_id=system.system_id,
            event_name=event_name,
            json_schema=json_schema,
            required=required,
            structure_version=system.structure_versions.get(event_name, 0) + 1,
        )
    ]


@_decide.register
def _(command: commands.RemoveEventStructure, state: Partner) -> list[PartnerEvent]:
    system = _system(state, command.system_id)
    event_name = rules.event_name(command.event_name)
    if event_name not in system.structures:
        message = f"no structure for event {event_name!r}"
        raise _refuse(RejectionReason.NOT_FOUND, message, "event_name")
    return [events.EventStructureRemoved(system_id=system.system_id, event_name=event_name)]


@_decide.register
def _(command: commands.SetAllowedOrigins, state: Partner) -> list[PartnerEvent]:
    system = _system(state, command.system_id)
    allowed = origins.origins(command.origins)
    if allowed == system.allowed_origins:
        return []
    return [events.AllowedOriginsSet(system_id=system.system_id, origins=allowed)]


@_decide.register
def _(command: commands.IssueReadToken, state: Partner) -> list[PartnerEvent]:
    event = events.ReadTokenIssued(
        token_id=canonical_uuid("token_id", command.token_id),
        name=rules.text("name", command.name, rules.TOKEN_NAME_MAX_LENGTH),
        token_hash=rules.key_hash(command.token_hash, "token_hash"),
        token_prefix=rules.key_prefix(command.token_prefix, "token_prefix"),
    )
    if event.token_id in state.read_tokens:
        message = f"read token {event.token_id} already exists"
        raise _refuse(RejectionReason.ALREADY_EXISTS, message, "token_id")
    hashes = {t.token_hash for t in state.read_tokens.values()}
    hashes |= {s.key_hash for s in state.systems.values()}
    if event.token_hash in hashes:
        raise _refuse(RejectionReason.ALREADY_EXISTS, "token_hash is already in use", "token_hash")
    active = sum(t.active for t in state.read_tokens.values())
    if active >= rules.MAX_READ_TOKENS:
        message = (
            f"the partner already has {rules.MAX_READ_TOKENS} active read tokens, the limit; "
            "revoke one first"
        )
        raise _refuse(RejectionReason.INVALID_STATE, message, "token_id")
    return [event]


@_decide.register
def _(command: commands.RevokeReadToken, state: Partner) -> list[PartnerEvent]:
    token_id = rules.require_str("token_id", command.token_id)
    token = state.read_tokens.get(token_id)
    if token is None:
        raise _refuse(RejectionReason.NOT_FOUND, f"read token {token_id} not found", "token_id")
    if not token.active:
        raise _refuse(RejectionReason.INVALID_STATE, f"read token {token_id} is already revoked")
    return [events.ReadTokenRevoked(token_id=token.token_id, token_hash=token.token_hash)]


@_decide.register
def _(command: commands.DeactivatePartner, state: Partner) -> list[PartnerEvent]:
    # Each active system and read token is ended explicitly, so key read models only need
    # SystemDeactivated and ReadTokenRevoked to refuse them.
    ended: list[PartnerEvent] = [
        events.SystemDeactivated(system_id=s.system_id, key_hash=s.key_hash)
        for s in state.systems.values()
        if s.status is SystemStatus.ACTIVE
    ]
    ended += [
        events.ReadTokenRevoked(token_id=t.token_id, token_hash=t.token_hash)
        for t in state.read_tokens.values()
        if t.active
    ]
    ended.append(events.PartnerDeactivated())
    return ended


def evolve(state: Partner | None, event: PartnerEvent, occurred_at: datetime) -> Partner:
    """Apply ``event`` (which occurred at tz-aware ``occurred_at``) to ``state``.

    ``occurred_at`` sets ``created_at``/``updated_at``. Raises :class:`InvalidTransition` when
    the event cannot apply (any event but ``PartnerCreated`` on None, ``PartnerCreated`` on an
    existing partner, an unknown system or structure, a duplicate system, naive time).
    """
    return dispatch.evolve(_evolve, state, event, occurred_at)


def _existing(state: Partner | None, event: PartnerEvent) -> Partner:
    return dispatch.existing(state, event, "PartnerCreated")


def _known_system(state: Partner | None, event: Any) -> tuple[Partner, PartnerSystem]:
    partner = _existing(state, event)
    system = partner.systems.get(event.system_id)
    if system is None:
        raise InvalidTransition(f"{type(event).__name__} for unknown system {event.system_id}")
    return partner, system


def _with_system(state: Partner, system: PartnerSystem, at: datetime) -> Partner:
    return replace(state, systems={**state.systems, system.system_id: system}, updated_at=at)


_evolve = singledispatch(dispatch.no_evolve_rule)


@_evolve.register
def _(event: events.PartnerCreated, state: Partner | None, at: datetime) -> Partner:
    dispatch.absent(state, event, "partner", "partner_id")
    # the partner starts as the registration's values, with no system yet
    return Partner(
        **asdict(event), status=PartnerStatus.ACTIVE, systems={}, created_at=at, updated_at=at
    )


@_evolve.register
def _(event: events.SystemAdded, state: Partner | None, at: datetime) -> Partner:
    partner = _existing(state, event)
    if event.system_id in partner.systems:
        raise InvalidTransition(f"SystemAdded for existing system {event.system_id}")
    # the system starts as the event's values, active
    values = asdict(event) | {"unknown_events": UnknownEventPolicy(event.unknown_events)}
    return _with_system(partner, PartnerSystem(**values, status=SystemStatus.ACTIVE), at)


@_evolve.register
def _(event: events.ApiKeyRotated, state: Partner | None, at: datetime) -> Partner:
    partner, system = _known_system(state, event)
    system = replace(system, key_hash=event.key_hash, key_prefix=event.key_prefix)
    return _with_system(partner, system, at)


def _system_to(status: SystemStatus) -> Callable[[Any, Partner | None, datetime], Partner]:
    """The transition of an event that only switches a system to ``status``."""

    def transition(event: Any, state: Partner | None, at: datetime) -> Partner:
        partner, system = _known_system(state, event)
        return _with_system(partner, replace(system, status=status), at)

    return transition


_evolve.register(events.SystemDeactivated, _system_to(SystemStatus.INACTIVE))
_evolve.register(events.SystemReactivated, _system_to(SystemStatus.ACTIVE))


@_evolve.register
def _(event: events.UnknownEventPolicySet, state: Partner | None, at: datetime) -> Partner:
    partner, system = _known_system(state, event)
    policy = UnknownEventPolicy(event.policy)
    return _with_system(partner, replace(system, unknown_events=policy), at)


@_evolve.register
def _(event: events.EventStructureDefined, state: Partner | None, at: datetime) -> Partner:
    partner, system = _known_system(state, event)
    structure = EventStructure(
        json_schema=event.json_schema, required=event.required, version=event.structure_version
    )
    system = replace(
        system,
        structures={**system.structures, event.event_name: structure},
        structure_versions={**system.structure_versions, event.event_name: structure.version},
    )
    return _with_system(partner, system, at)


@_evolve.register
def _(event: events.EventStructureRemoved, state: Partner | None, at: datetime) -> Partner:
    partner, system = _known_system(state, event)
    if event.event_name not in system.structures:
        raise InvalidTransition(f"EventStructureRemoved for unknown event {event.event_name!r}")
    structures = {k: v for k, v in system.structures.items() if k != event.event_name}
    return _with_system(partner, replace(system, structures=structures), at)


@_evolve.register
def _(event: events.AllowedOriginsSet, state: Partner | None, at: datetime) -> Partner:
    partner, system = _known_system(state, event)
    return _with_system(partner, replace(system, allowed_origins=tuple(event.origins)), at)


@_evolve.register
def _(event: events.ReadTokenIssued, state: Partner | None, at: datetime) -> Partner:
    partner = _existing(state, event)
    if event.token_id in partner.read_tokens:
        raise InvalidTransition(f"ReadTokenIssued for existing token {event.token_id}")
    token = ReadToken(**asdict(event), active=True, issued_at=at)
    tokens = {**partner.read_tokens, token.token_id: token}
    return replace(partner, read_tokens=tokens, updated_at=at)


@_evolve.register
def _(event: events.ReadTokenRevoked, state: Partner | None, at: datetime) -> Partner:
    partner = _existing(state, event)
    token = partner.read_tokens.get(event.token_id)
    if token is None:
        raise InvalidTransition(f"ReadTokenRevoked for unknown token {event.token_id}")
    revoked = replace(token, active=False, revoked_at=at)
    tokens = {**partner.read_tokens, token.token_id: revoked}
    return replace(partner, read_tokens=tokens, updated_at=at)


@_evolve.register
def _(event: events.PartnerDeactivated, state: Partner | None, at: datetime) -> Partner:
    partner = _existing(state, event)
    return replace(partner, status=PartnerStatus.INACTIVE, updated_at=at)
