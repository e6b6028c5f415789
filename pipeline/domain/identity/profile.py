"""A person's contact data and the rule that merges two records of one person.

A :class:`Profile` is what a prospect knows of a person: names, e-mail, phone, where the
lead came from (``source``), free ``notes``, and every other name, e-mail, phone and source
that earlier merges brought in. :func:`union` is the merge rule (issue 11: the survivor
keeps the union of the data): the survivor's primary values stay primary, nothing of the
merged record is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from pipeline.domain.errors import InvalidValue
from pipeline.domain.values import Email, Phone, parse_name

SOURCE_MAX_LENGTH = 100
NOTES_MAX_LENGTH = 2000


def parse_email(raw: Any) -> str:
    """Raises ``InvalidValue("email", ...)``."""
    return Email.parse(raw).value


def parse_phone(raw: Any) -> str | None:
    """E.164, or None for an absent or blank phone. Raises ``InvalidValue("phone", ...)``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return Phone.parse(raw).value


def parse_source(raw: Any) -> str | None:
    """Where the lead came from ("web", "fair 2026"...): stripped, at most 100 characters,
    None when blank. Raises ``InvalidValue("source", ...)``."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidValue("source", "must be a string")
    text = raw.strip()
    if len(text) > SOURCE_MAX_LENGTH:
        raise InvalidValue("source", f"must be at most {SOURCE_MAX_LENGTH} characters")
    return text or None


def parse_notes(raw: Any) -> str:
    """Free text, at most 2,000 characters as given ("" when absent).
    Raises ``InvalidValue("notes", ...)``."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidValue("notes", "must be a string")
    if len(raw) > NOTES_MAX_LENGTH:
        raise InvalidValue("notes", f"must be at most {NOTES_MAX_LENGTH} characters")
    return raw


@dataclass(frozen=True, slots=True)
class Contact:
    """Who a student or instructor is: names (1-100 characters), e-mail (normalised),
    phone (E.164 or None)."""

    first_name: str
    last_name: str
    email: str
    phone: str | None

    @classmethod
    def parse(cls, first_name: Any, last_name: Any, email: Any, phone: Any) -> Contact:
        """Raises ``InvalidValue`` naming the first bad field."""
        return cls(
            parse_name("first_name", first_name),
            parse_name("last_name", last_name),
            parse_email(email),
            parse_phone(phone),
        )

    def updated(
        self,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> Contact:
        """This contact with the given fields replaced (None: unchanged; a blank phone
        removes it). Raises ``InvalidValue``."""
        return Contact(
            self.first_name if first_name is None else parse_name("first_name", first_name),
            self.last_name if last_name is None else parse_name("last_name", last_name),
            self.email if email is None else parse_email(email),
            self.phone if phone is None else parse_phone(phone),
        )


@dataclass(frozen=True, slots=True)
class Profile:
    """A prospect's data. ``other_*`` hold what merges brought in beside the primary
    values (full names as "First Last"), in the order they arrived, without repeats."""

    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    source: str | None = None
    notes: str = ""
    other_names: tuple[str, ...] = ()
    other_emails: tuple[str, ...] = ()
    other_phones: tuple[str, ...] = ()
    other_sources: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def values(self) -> dict[str, set[str]]:
        """Every name, e-mail, phone and source this profile knows, primary or other: what
        a merge must not lose."""
        return {
            "names": {self.full_name, *self.other_names},
            "emails": {self.email, *self.other_emails},
            "phones": {p for p in (self.phone, *self.other_phones) if p},
            "sources": {s for s in (self.source, *self.other_sources) if s},
        }

    def to_data(self) -> dict[str, Any]:
        """JSON/Avro form (tuples as lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in fields(self)
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_data`; extra keys are ignored. Raises KeyError."""
        values = {}
        for f in fields(cls):
            value = data[f.name]
            values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


PROFILE_FIELDS = tuple(f.name for f in fields(Profile))


def _others(primary: str | None, *groups: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for value in group:
            if value and value != primary:
                seen.setdefault(value, None)
    return tuple(seen)


def union(survivor: Profile, merged: Profile) -> Profile:
    """The survivor after absorbing ``merged`` (two records of one person).

    The survivor's primary values stay primary; a primary value it lacks (phone, source)
    is taken from ``merged``; every other value of either lands in ``other_*``; notes are
    joined (the merged record's under a blank line, unless already contained). Pure and
    lossless: ``values()`` of the result contains both inputs' ``values()``.
    """
    phone = survivor.phone or merged.phone
    source = survivor.source or merged.source
    if not merged.notes or merged.notes in survivor.notes:
        notes = survivor.notes
    elif not survivor.notes:
        notes = merged.notes
    else:
        notes = f"{survivor.notes}\n\n{merged.notes}"
    return Profile(
        first_name=survivor.first_name,
        last_name=survivor.last_name,
        email=survivor.email,
        phone=phone,
        source=source,
        notes=notes,
        other_names=_others(
            survivor.full_name, survivor.other_names, [merged.full_name], merged.other_names
        ),
        other_emails=_others(
            survivor.email, survivor.other_emails, [merged.email], merged.other_emails
        ),
        other_phones=_others(
            phone, [survivor.phone], survivor.other_phones, [merged.phone], merged.other_phones
        ),
        other_sources=_others(
            source,
            [survivor.source],
            survivor.other_sources,
            [merged.source],
            merged.other_sources,
        ),
    )
