"""The identity process manager's rule: the command an event causes on another aggregate.

Pure: :func:`reactions` maps one envelope to the commands to send. Each command's id is
derived from the event id (uuid5), and its ``issued_at`` is the event's ``occurred_at``,
so an event delivered twice causes the same command twice, and the command handler
answers the second with the first's result (``handling.handle``, by command id): the
seed 003 idempotent consumer, with the aggregate's memory as the inbox.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from typing import Any

from pipeline.domain.command import Command
from pipeline.domain.identity import instructors, prospects, students
from pipeline.domain.users.commands import CreateUser
from pipeline.domain.values import ARGON2ID_PREFIX, UserRole
from schemas.envelope import Envelope
from schemas.uuids import uuid5_text

_REACTION_NAMESPACE = uuid.UUID("c2b7d9e4-1f3a-5c68-8e0b-4a9d6f2e1b73")
# what a ProspectConverted carries over to the new person, under the same names
_CONVERTED_CONTACT = ("prospect_id", "first_name", "last_name", "email", "phone")


_ACCOUNT_NAMESPACE = uuid.UUID("5e0c7a51-9d2b-4c6e-a8f3-1b7d2e4c9a60")
_LOGIN_ROLE = {prospects.ConversionRole.STUDENT: UserRole.STUDENT,
               prospects.ConversionRole.INSTRUCTOR: UserRole.TEACHER}  # fmt: skip


def account_id(prospect_id: str) -> str:
    """The user id of the login a converted prospect gets (one per person, whatever roles
    they are converted to)."""
    return uuid5_text(_ACCOUNT_NAMESPACE, prospect_id)


def account_username(email: str, prospect_id: str) -> str:
    """The username of that login: the e-mail's local part in ``a-z0-9_`` (20 characters at
    most) and six characters of the person, e.g. ``ada_lovelace_3f9c2a`` (``Username``'s
    rules: 3-30 characters)."""
    local = re.sub(r"[^a-z0-9_]+", "_", email.split("@", 1)[0].lower()).strip("_")[:20]
    return f"{local or 'person'}_{account_id(prospect_id).replace('-', '')[:6]}"


def unusable_password_hash(user_id: str) -> str:
    """A well-formed argon2id PHC string that no known password matches (its hash bytes are
    a digest, not an argon2 output), for the login ``user_id`` of a converted person: the
    login exists, and nobody signs in with it until the person sets a password through a
    one-time link (``api/password_links.py``, which serves only logins still holding
    this hash). Deterministic, so a reaction delivered twice is the same command."""
    salt = uuid.UUID(user_id).bytes
    digest = hashlib.sha256(f"streamfold/unusable-password/{user_id}".encode()).digest()
    encoded = [base64.b64encode(b).decode().rstrip("=") for b in (salt, digest)]
    return f"{ARGON2ID_PREFIX}v=19$m=19456,t=2,p=1${encoded[0]}${encoded[1]}"


def login_command_id(event_id: str) -> str:
    """The id of the ``CreateUser`` a ``ProspectConverted`` (``event_id``) causes."""
    return uuid5_text(_ACCOUNT_NAMESPACE, event_id)


def reaction_id(event_id: str) -> str:
    """The id of the command an event causes (uuid5 of the event id)."""
    return uuid5_text(_REACTION_NAMESPACE, event_id)


def reactions(envelope: Envelope) -> list[Command]:
    """The commands ``envelope`` causes: merge step 2 after ``ProspectMergeStarted``,
    step 3 after ``ProspectAbsorbed``/``ProspectMergeRefused``; after
    ``ProspectConverted`` a ``CreateStudent`` or ``CreateInstructor`` and the person's login
    (``CreateUser`` with an unusable password, role student or teacher: issue 22). The
    login goes through the e-mail and username reservations like any new user: when an
    account already has the e-mail, the reservation refuses it and that account is the
    person's (a student sees their record by their account's e-mail). [] for every other
    event."""
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
            prospect_id = data["prospect_id"]
            login_id = account_id(prospect_id)
            login = CreateUser(
                **{**common, "command_id": login_command_id(envelope.event_id)},
                aggregate_id=login_id,
                username=account_username(data["email"], prospect_id),
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                phone=data["phone"],
                role=_LOGIN_ROLE[prospects.ConversionRole(data["role"])].value,
                password_hash=unusable_password_hash(login_id),
            )
            return [create(**common, aggregate_id=data["person_id"], **contact), login]
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
