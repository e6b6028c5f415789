"""The identity process manager's rule: the command an event causes on another aggregate.

Pure: :func:`reactions` maps one envelope to the commands to send. Each command's id is
derived from the event id (uuid5), and its ``issued_at`` is the event's ``occurred_at``,
so an event delivered twice causes the same command twice, and the command handler
answers the second with the first's result (``handling.handle``, by command id): the
seed 003 idempotent consumer, with the aggregate's memory as the inbox.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.domain.command import Command
from pipeline.domain.identity import instructors, prospects, students
from schemas.envelope import Envelope
from schemas.uuids import uuid5_text

_REACTION_NAMESPACE = uuid.UUID("c2b7d9e4-1f3a-5c68-8e0b-4a9d6f2e1b73")
# what a ProspectConverted carries over to the new person, under the same names
_CONVERTED_CONTACT = ("prospect_id", "first_name", "last_name", "email", "phone")


def reaction_id(event_id: str) -> str:
    """The id of the command an event causes (uuid5 of the event id)."""
    return uuid5_text(_REACTION_NAMESPACE, event_id)


def reactions(envelope: Envelope) -> list[Command]:
    """The commands ``envelope`` causes: merge step 2 after ``ProspectMergeStarted``,
    step 3 after ``ProspectAbsorbed``/``ProspectMergeRefused``, a ``CreateStudent`` or
    ``CreateInstructor`` after ``ProspectConverted``; [] for every other event."""
    if envelope.aggregate_type != prospects.AGGREGATE_TYPE:
        return []
    data = envelope.data
    common: dict[str, Any] = {
        "command_id": reaction_id(envelope.event_id),
        "issued_at": envelope.occurred_at,
        "correlation_id": envelope.correlation_id,
        "actor": None if envelope.actor == "system" else envelope.actor,
    }
    match envelope.event_type:
        case "ProspectMergeStarted":
            return [
                prospects.AbsorbProspect(
                    **common,
                    aggregate_id=data["into_id"],
                    source_id=data["prospect_id"],
                    profile=data["profile"],
                    converted=list(data["converted"]),
                )
            ]
        case "ProspectAbsorbed":
            return [
                prospects.CompleteMerge(
                    **common, aggregate_id=data["source_id"], into_id=data["prospect_id"]
                )
            ]
        case "ProspectMergeRefused":
            return [
                prospects.CancelMerge(
                    **common,
                    aggregate_id=data["source_id"],
                    into_id=data["prospect_id"],
                    reason=data["reason"],
                )
            ]
        case "ProspectConverted":
            create = (
                students.CreateStudent
                if data["role"] == prospects.ConversionRole.STUDENT
                else instructors.CreateInstructor
            )
            contact = {name: data[name] for name in _CONVERTED_CONTACT}
            return [create(**common, aggregate_id=data["person_id"], **contact)]
    return []


def compensations(command: Command, reason: str) -> list[Command]:
    """The commands that undo what caused ``command`` when its reservation was refused
    (``reason``, e.g. duplicate_email): a conversion's CreateStudent or CreateInstructor
    -> UndoConversion on its prospect, which may then convert again. Its id derives from
    the refused command's, so a refusal answered twice undoes once."""
    if not isinstance(command, students.CreateStudent | instructors.CreateInstructor):
        return []
    role = prospects.ConversionRole.STUDENT
    if isinstance(command, instructors.CreateInstructor):
        role = prospects.ConversionRole.INSTRUCTOR
    return [
        prospects.UndoConversion(
            command_id=uuid5_text(_REACTION_NAMESPACE, f"{command.command_id}/refused"),
            aggregate_id=command.prospect_id,
            issued_at=command.issued_at,
            correlation_id=command.correlation_id,
            actor=command.actor,
            role=str(role),
            reason=reason,
        )
    ]
