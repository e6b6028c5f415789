"""Events of the prospect aggregate and their :data:`ProspectEvent` union: each one's fields are the
``data`` record of ``schemas/avro/prospect/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.domain.event import DomainEvent


@dataclass(frozen=True, slots=True)
class ProspectValues:
    """A prospect's id and primary values (a profile without its ``other_*``): all the
    fields, in order, of the two events below."""

    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    source: str | None
    notes: str


class ProspectCreated(ProspectValues, DomainEvent, version=1):
    """A prospect was created with these values."""


class ProspectUpdated(ProspectValues, DomainEvent, version=1):
    """The prospect's primary values after the update (all of them)."""


class ProspectMergeStarted(DomainEvent, version=1):
    """Step 1: this prospect is to be merged into ``into_id``; ``profile`` is all it has."""

    prospect_id: str
    into_id: str
    profile: dict[str, Any]
    converted: tuple[str, ...]
    """Roles this prospect converted to: the survivor takes them over."""


class ProspectAbsorbed(DomainEvent, version=1):
    """Step 2 done: this prospect absorbed ``source_id``; ``profile`` is the union, and
    ``converted`` the roles either converted to (one person, one student at most)."""

    prospect_id: str
    source_id: str
    profile: dict[str, Any]
    converted: tuple[str, ...]


class ProspectMergeRefused(DomainEvent, version=1):
    """Step 2 refused (``reason``): not_found, merging, merged, same_prospect, or
    both_converted (both became a student, or both an instructor: one person would keep
    two)."""

    prospect_id: str
    source_id: str
    reason: str


class ProspectMerged(DomainEvent, version=1):
    """A tombstone now: ``into_id`` is the survivor, which holds all of its data."""

    prospect_id: str
    into_id: str


class ProspectMergeCancelled(DomainEvent, version=1):
    prospect_id: str
    into_id: str
    reason: str


class ProspectConverted(DomainEvent, version=1):
    """Converted into a student or instructor ``person_id`` with this contact data."""

    prospect_id: str
    role: str
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


class ProspectConversionUndone(DomainEvent, version=1):
    """The conversion to ``role`` did not make its student (instructor): ``reason``."""

    prospect_id: str
    role: str
    reason: str


ProspectEvent = (
    ProspectCreated
    | ProspectUpdated
    | ProspectMergeStarted
    | ProspectAbsorbed
    | ProspectMergeRefused
    | ProspectMerged
    | ProspectMergeCancelled
    | ProspectConverted
    | ProspectConversionUndone
)
