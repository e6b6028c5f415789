"""Events of the prospect aggregate and their :data:`ProspectEvent` union: each one's fields are the
``data`` record of ``schemas/avro/prospect/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ProspectAbsorbed",
    "ProspectConversionUndone",
    "ProspectConverted",
    "ProspectCreated",
    "ProspectEvent",
    "ProspectMergeCancelled",
    "ProspectMergeRefused",
    "ProspectMergeStarted",
    "ProspectMerged",
    "ProspectUpdated",
]


@dataclass(frozen=True, slots=True)
class ProspectCreated:
    event_type: ClassVar[str] = "ProspectCreated"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    source: str | None
    notes: str


@dataclass(frozen=True, slots=True)
class ProspectUpdated:
    """The prospect's primary values after the update (all of them)."""

    event_type: ClassVar[str] = "ProspectUpdated"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    source: str | None
    notes: str


@dataclass(frozen=True, slots=True)
class ProspectMergeStarted:
    """Step 1: this prospect is to be merged into ``into_id``; ``profile`` is all it has."""

    event_type: ClassVar[str] = "ProspectMergeStarted"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    into_id: str
    profile: dict[str, Any]
    converted: tuple[str, ...]
    """Roles this prospect converted to: the survivor takes them over."""


@dataclass(frozen=True, slots=True)
class ProspectAbsorbed:
    """Step 2 done: this prospect absorbed ``source_id``; ``profile`` is the union, and
    ``converted`` the roles either converted to (one person, one student at most)."""

    event_type: ClassVar[str] = "ProspectAbsorbed"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    source_id: str
    profile: dict[str, Any]
    converted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProspectMergeRefused:
    """Step 2 refused (``reason``): not_found, merging, merged, same_prospect, or
    both_converted (both became a student, or both an instructor: one person would keep
    two)."""

    event_type: ClassVar[str] = "ProspectMergeRefused"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    source_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProspectMerged:
    """A tombstone now: ``into_id`` is the survivor, which holds all of its data."""

    event_type: ClassVar[str] = "ProspectMerged"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    into_id: str


@dataclass(frozen=True, slots=True)
class ProspectMergeCancelled:
    event_type: ClassVar[str] = "ProspectMergeCancelled"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    into_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ProspectConverted:
    """Converted into a student or instructor ``person_id`` with this contact data."""

    event_type: ClassVar[str] = "ProspectConverted"
    schema_version: ClassVar[int] = 1

    prospect_id: str
    role: str
    person_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class ProspectConversionUndone:
    """The conversion to ``role`` did not make its student (instructor): ``reason``."""

    event_type: ClassVar[str] = "ProspectConversionUndone"
    schema_version: ClassVar[int] = 1

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
