"""Identity read-model change notifications, pushed live (issue 11, seed 003's real-time
push filtered by permission).

The identity projection appends one entry per applied event to ``identity:live``
(``pipeline/projections/identity.py``): ``{event_type, subject, aggregate_version, at,
audience}``. :class:`IdentityNotifications` is the per-process hub
(``api/live.py``) that hands each batch of entries to the subscribers allowed to see
them. What a subscriber may see (:class:`Audience`): staff (admin, teacher) everything;
a student only the events of the student record with their account's e-mail. A batch is
filtered and encoded once per distinct audience, not once per subscriber: 1,000
subscribers of one audience cost one JSON encoding per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from api.live import Entry, LiveHub, LiveItem, Subscriber, entry_key
from pipeline.projections.identity import NOTIFY_STREAM, STAFF

KINDS = frozenset({"prospect", "student", "instructor"})
"""Aggregate types a subscriber can ask for (``types``)."""
STUDENT_KINDS = frozenset({"student"})


class Refused(Exception):
    """The caller may not subscribe to what it asked for; ``args[0]`` says why."""


@dataclass(frozen=True, slots=True)
class Audience:
    """What one subscriber sees: entries whose audience holds ``key`` (``staff`` or a
    student's ``email:<hash>``), of the aggregate types in ``kinds``."""

    key: str
    kinds: frozenset[str]

    @classmethod
    def of(cls, role: str, email_key: str, asked: frozenset[str] | None) -> Audience:
        """The audience of a caller with ``role`` (``email_key``: their e-mail's audience
        key) asking for ``asked`` (None: all they may see). Raises Refused."""
        unknown = (asked or frozenset()) - KINDS
        if unknown:
            raise Refused(f"unknown types: {', '.join(sorted(unknown))}")
        if role in ("admin", "teacher"):
            return cls(STAFF, asked or KINDS)
        if role == "student":
            if asked and asked - STUDENT_KINDS:
                raise Refused("a student may only follow their own student record")
            return cls(email_key, STUDENT_KINDS)
        raise Refused(f"the {role} role may not follow identity changes")


@dataclass(frozen=True, slots=True)
class Batch:
    """Notifications of one read (oldest first), as dicts, and their WebSocket frame."""

    notes: tuple[dict[str, Any], ...]
    frame: str

    @classmethod
    def of(cls, notes: tuple[dict[str, Any], ...]) -> Batch:
        # orjson: the stdlib encoder was 5-16 % of an API process in a burst (py-spy)
        frame = orjson.dumps({"type": "notifications", "items": notes}).decode()
        return cls(notes, frame)


def note_of(entry_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry as a client sees it: ``{id, event_type, subject, aggregate_version,
    at}`` (``id``: where to resume after; ``at``: ISO-8601 UTC)."""
    return {
        "id": entry_id,
        "event_type": fields[b"event_type"].decode(),
        "subject": fields[b"subject"].decode(),
        "aggregate_version": int(fields[b"aggregate_version"]),
        "at": fields[b"at"].decode(),
    }


class IdentityNotifications(LiveHub):
    """``who``: an :class:`Audience`. Payload: a :class:`Batch`."""

    STREAM = NOTIFY_STREAM

    async def select(
        self, entries: Sequence[Entry], subscribers: Sequence[Subscriber]
    ) -> list[tuple[Subscriber, LiveItem]]:
        parsed = [
            (fields[b"audience"].decode().split(), note_of(entry_id, fields))
            for entry_id, fields in entries
        ]
        items: dict[Audience, LiveItem | None] = {}
        pushes = []
        for subscriber in subscribers:
            audience: Audience = subscriber.who
            if audience not in items:
                notes = tuple(
                    note
                    for keys, note in parsed
                    if audience.key in keys and note["subject"].split("/", 1)[0] in audience.kinds
                )
                items[audience] = LiveItem(notes[-1]["id"], Batch.of(notes)) if notes else None
            item = items[audience]
            if item is not None:
                pushes.append((subscriber, item))
        return pushes

    def after(self, item: LiveItem, sent: tuple[int, int]) -> LiveItem | None:
        notes = item.payload.notes
        if entry_key(notes[0]["id"]) > sent:
            return item  # the usual case: the shared frame, encoded once
        kept = tuple(n for n in notes if entry_key(n["id"]) > sent)
        return LiveItem(item.entry_id, Batch.of(kept)) if kept else None
