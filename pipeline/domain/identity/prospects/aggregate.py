"""``decide`` (command -> events | Rejection), ``evolve`` (state + event -> state) and the
e-mail claims of the prospect aggregate."""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue, UnknownEventType
from pipeline.domain.identity.profile import (
    Profile,
    parse_email,
    parse_notes,
    parse_phone,
    parse_source,
    union,
)
from pipeline.domain.identity.prospects import commands, events
from pipeline.domain.identity.prospects.events import ProspectEvent
from pipeline.domain.identity.prospects.state import ConversionRole, Prospect, ProspectStatus
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid, email_claim, parse_name
from schemas.uuids import uuid5_text

AGGREGATE_TYPE = "prospect"

_PERSON_NAMESPACE = uuid.UUID("9a4e1c37-6b2d-5f80-b3c1-7e5d2a9f0c64")


def person_id(prospect_id: str, role: str) -> str:
    """The id of the student or instructor a prospect converts into (uuid5 of the pair):
    one per role, so a second conversion addresses an existing aggregate."""
    return uuid5_text(_PERSON_NAMESPACE, f"{prospect_id}/{role}")


def parse_role(raw: Any) -> ConversionRole:
    """Raises ``InvalidValue("role", ...)``."""
    try:
        return ConversionRole(raw)
    except ValueError as exc:
        raise InvalidValue("role", "must be student or instructor") from exc


def _refusal(state: Prospect | None) -> Rejection | None:
    """Why a command other than create may not run on ``state``, if it may not."""
    if state is None:
        return Rejection(RejectionReason.NOT_FOUND, "prospect not found")
    if state.status is ProspectStatus.MERGED:
        return Rejection(RejectionReason.DELETED, f"prospect was merged into {state.into_id}")
    if state.status is ProspectStatus.MERGING:
        return Rejection(
            RejectionReason.INVALID_STATE, f"prospect is being merged into {state.into_id}"
        )
    return None


def _created(command: commands.CreateProspect) -> events.ProspectCreated:
    return events.ProspectCreated(
        prospect_id=canonical_uuid("aggregate_id", command.aggregate_id),
        first_name=parse_name("first_name", command.first_name),
        last_name=parse_name("last_name", command.last_name),
        email=parse_email(command.email),
        phone=parse_phone(command.phone),
        source=parse_source(command.source),
        notes=parse_notes(command.notes),
    )


def _updated(state: Prospect, command: commands.UpdateProspect) -> list[ProspectEvent]:
    p = state.profile
    event = events.ProspectUpdated(
        prospect_id=state.prospect_id,
        first_name=p.first_name
        if command.first_name is None
        else parse_name("first_name", command.first_name),
        last_name=p.last_name
        if command.last_name is None
        else parse_name("last_name", command.last_name),
        email=p.email if command.email is None else parse_email(command.email),
        phone=p.phone if command.phone is None else parse_phone(command.phone),
        source=p.source if command.source is None else parse_source(command.source),
        notes=p.notes if command.notes is None else parse_notes(command.notes),
    )
    current = (p.first_name, p.last_name, p.email, p.phone, p.source, p.notes)
    new = (event.first_name, event.last_name, event.email, event.phone, event.source, event.notes)
    return [] if new == current else [event]


def _absorbed(state: Prospect | None, command: commands.AbsorbProspect) -> ProspectEvent:
    source_id = canonical_uuid("source_id", command.source_id)
    if state is None:
        reason = "not_found"
    elif state.prospect_id == source_id:
        reason = "same_prospect"
    elif state.status is not ProspectStatus.ACTIVE:
        reason = str(state.status)
    elif set(state.converted) & set(command.converted):
        reason = "both_converted"
    else:
        merged = Profile.from_data(command.profile)
        converted = (*state.converted, *(r for r in command.converted if r not in state.converted))
        return events.ProspectAbsorbed(
            prospect_id=state.prospect_id,
            source_id=source_id,
            profile=union(state.profile, merged).to_data(),
            converted=converted,
        )
    return events.ProspectMergeRefused(
        prospect_id=canonical_uuid("aggregate_id", command.aggregate_id),
        source_id=source_id,
        reason=reason,
    )


def _decide(state: Prospect | None, command: Command) -> list[ProspectEvent] | Rejection:
    if isinstance(command, commands.CreateProspect):
        if state is not None:
            return Rejection(RejectionReason.ALREADY_EXISTS, "prospect already exists")
        return [_created(command)]
    if isinstance(command, commands.AbsorbProspect):
        return [_absorbed(state, command)]
    if isinstance(command, commands.UndoConversion):
        if state is None or command.role not in state.converted:
            return Rejection(RejectionReason.INVALID_STATE, f"no conversion to {command.role}")
        return [events.ProspectConversionUndone(state.prospect_id, command.role, command.reason)]
    if isinstance(command, commands.CompleteMerge | commands.CancelMerge):
        into = canonical_uuid("into_id", command.into_id)
        if state is None or state.status is not ProspectStatus.MERGING or state.into_id != into:
            return Rejection(RejectionReason.INVALID_STATE, f"no merge into {into} in progress")
        if isinstance(command, commands.CompleteMerge):
            return [events.ProspectMerged(prospect_id=state.prospect_id, into_id=into)]
        return [
            events.ProspectMergeCancelled(
                prospect_id=state.prospect_id, into_id=into, reason=command.reason
            )
        ]
    refusal = _refusal(state)
    if refusal is not None:
        return refusal
    assert state is not None
    if isinstance(command, commands.UpdateProspect):
        return _updated(state, command)
    if isinstance(command, commands.MergeProspect):
        into = canonical_uuid("into_id", command.into_id)
        if into == state.prospect_id:
            return Rejection(RejectionReason.INVALID, "cannot merge a prospect into itself", "into")
        return [
            events.ProspectMergeStarted(
                prospect_id=state.prospect_id,
                into_id=into,
                profile=state.profile.to_data(),
                converted=state.converted,
            )
        ]
    if isinstance(command, commands.ConvertProspect):
        role = parse_role(command.role)
        if role in state.converted:
            return Rejection(
                RejectionReason.ALREADY_EXISTS, f"prospect was already converted to {role}"
            )
        p = state.profile
        return [
            events.ProspectConverted(
                prospect_id=state.prospect_id,
                role=str(role),
                person_id=person_id(state.prospect_id, role),
                first_name=p.first_name,
                last_name=p.last_name,
                email=p.email,
                phone=p.phone,
            )
        ]
    raise TypeError(f"no decide rule for {type(command).__name__}")


def decide(state: Prospect | None, command: Command) -> list[ProspectEvent] | Rejection:
    """Rejections: ALREADY_EXISTS (create on an existing id, a second conversion to one
    role), NOT_FOUND (unknown prospect), DELETED (a merged prospect: it accepts nothing),
    INVALID_STATE (a merge in progress; a merge step that matches none), INVALID (a value;
    ``field`` set). An update that changes nothing is accepted with no event.
    """
    try:
        return _decide(state, command)
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)
    except KeyError as exc:  # an AbsorbProspect whose profile lacks a field
        return Rejection(RejectionReason.INVALID, f"profile lacks {exc}", "profile")


def _primary(event: events.ProspectValues) -> dict[str, Any]:
    """The profile's primary values the event carries: all its fields but the id."""
    values = asdict(event)
    del values["prospect_id"]
    return values


def evolve(state: Prospect | None, event: ProspectEvent, occurred_at: datetime) -> Prospect | None:
    """Raises InvalidTransition for an event the state cannot take (a decide bug)."""
    at = occurred_at.astimezone(UTC)
    if isinstance(event, events.ProspectCreated):
        if state is not None:
            raise InvalidTransition(f"ProspectCreated for existing prospect {state.prospect_id}")
        return Prospect(event.prospect_id, Profile(**_primary(event)), at, at)
    if isinstance(event, events.ProspectMergeRefused):
        return state  # a fact about a request; the refusing prospect is unchanged
    if state is None:
        raise InvalidTransition(f"{event.event_type} before ProspectCreated")
    if isinstance(event, events.ProspectUpdated):
        profile = replace(state.profile, **_primary(event))
        return replace(state, profile=profile, updated_at=at)
    if isinstance(event, events.ProspectMergeStarted):
        return replace(state, status=ProspectStatus.MERGING, into_id=event.into_id, updated_at=at)
    if isinstance(event, events.ProspectAbsorbed):
        profile = Profile.from_data(event.profile)
        return replace(state, profile=profile, converted=tuple(event.converted), updated_at=at)
    if isinstance(event, events.ProspectMerged):
        return replace(state, status=ProspectStatus.MERGED, updated_at=at)
    if isinstance(event, events.ProspectMergeCancelled):
        return replace(state, status=ProspectStatus.ACTIVE, into_id=None, updated_at=at)
    if isinstance(event, events.ProspectConverted):
        return replace(state, converted=(*state.converted, event.role), updated_at=at)
    if isinstance(event, events.ProspectConversionUndone):
        converted = tuple(r for r in state.converted if r != event.role)
        return replace(state, converted=converted, updated_at=at)
    raise UnknownEventType(type(event).__name__)


def claims_for(command: Command) -> tuple[str, ...]:
    """The e-mail a create or an update sets (``values.email_claim``)."""
    if isinstance(command, commands.CreateProspect | commands.UpdateProspect):
        return email_claim(command.email)
    return ()


def claims_held(state: Prospect | None) -> frozenset[str]:
    """The primary e-mail; a merged prospect keeps it (a new prospect with it would be a
    third record of the survivor's person)."""
    return frozenset() if state is None else frozenset({f"email:{state.profile.email}"})
