"""The event envelope: metadata plus an event's data, as stored on Kafka (Avro-encoded by
``schemas.codec``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.uuids import uuid5_text

__all__ = ["EVENT_NAMESPACE", "SYSTEM_ACTOR", "Envelope", "event_id_for", "sdk_actor"]

# Fixed forever: changing it would change the ids of re-emitted events and break idempotent
# consumers that deduplicate on event_id.
EVENT_NAMESPACE: uuid.UUID = uuid.UUID("6f3d2a1e-9b4c-5e8f-a7d6-3c2b1a0f9e8d")

SYSTEM_ACTOR = "system"
"""The actor of a command that names no user: operator tools, direct Kafka producers."""


def sdk_actor(system_id: str) -> str:
    """The actor of a tracking event: the partner system whose API key sent it."""
    return f"sdk:{system_id}"


def event_id_for(command_id: str, aggregate_version: int) -> str:
    """Deterministic event id (UUIDv5 string) of the event command ``command_id`` put at
    ``aggregate_version`` (1-based) of its aggregate.

    A replay of the same command from the same state (a crash before the snapshot was
    stored) yields identical ids, which idempotent projections ignore. A command that runs
    again at a later version (re-sent after its id left the aggregate's memory of recent
    commands) yields new ids: two events, never one id twice, and the reactions derived
    from them (``pipeline/domain/identity/reactions.py``) are new commands too (issue 22).
    """
    return uuid5_text(EVENT_NAMESPACE, f"{command_id}@{aggregate_version}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One event with its metadata.

    Fields:
        event_id: UUID string, see :func:`event_id_for`.
        event_type: event class name, e.g. ``"UserCreated"`` (past tense).
        schema_version: version of the ``data`` shape (>= 1).
        aggregate_type: e.g. ``"user"``; aggregate_id: the aggregate's UUID string.
        aggregate_version: 1-based position of this event in the aggregate's history.
        occurred_at: tz-aware UTC datetime, microsecond precision (Avro timestamp-micros).
        producer: name of the emitting service/agent.
        correlation_id: id shared by everything caused by one original request.
        causation_id: id of the command (or event) that directly caused this event.
        actor: who caused it (seed 000 audits every change by its author): the id of the
            user who issued the command, ``"system"`` for operator tools and producers
            that name no user, ``"sdk:<system id>"`` for tracking events, ``"unknown"`` for
            events written before envelopes carried an actor (schema v1).
        data: the event's fields as plain JSON/Avro-able values (str, int, None, ...); tz-aware
            UTC datetimes are allowed for timestamp fields.
    """

    event_id: str
    event_type: str
    schema_version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str
    actor: str
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        """``"<aggregate_type>/<aggregate_id>"``, what the event is about: seed 003's
        envelope field, written by the schemas that have it (identity events)."""
        return f"{self.aggregate_type}/{self.aggregate_id}"
