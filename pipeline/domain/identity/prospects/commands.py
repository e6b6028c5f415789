"""Commands of the prospect aggregate and their :data:`ProspectCommand` union, discriminated on
``type`` (``pipeline.domain.command``)."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import Field

from pipeline.domain.command import Command


class CreateProspect(Command):
    type: Literal["CreateProspect"] = "CreateProspect"
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    source: str | None = None
    notes: str | None = None


class UpdateProspect(Command):
    """Replace the fields given (None: unchanged; a blank phone or source removes it)."""

    type: Literal["UpdateProspect"] = "UpdateProspect"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    source: str | None = None
    notes: str | None = None


class MergeProspect(Command):
    """Merge this prospect (a second record of one person) into ``into_id``."""

    type: Literal["MergeProspect"] = "MergeProspect"
    into_id: str


class AbsorbProspect(Command):
    """Step 2 of a merge, on the survivor (the process manager sends it)."""

    type: Literal["AbsorbProspect"] = "AbsorbProspect"
    source_id: str
    profile: dict[str, Any]
    converted: list[str] = field(default_factory=list)
    """Roles the source converted to: the survivor takes them over."""


class CompleteMerge(Command):
    """Step 3 of a merge the survivor absorbed."""

    type: Literal["CompleteMerge"] = "CompleteMerge"
    into_id: str


class CancelMerge(Command):
    """Step 3 of a merge the survivor refused."""

    type: Literal["CancelMerge"] = "CancelMerge"
    into_id: str
    reason: str


class ConvertProspect(Command):
    type: Literal["ConvertProspect"] = "ConvertProspect"
    role: str


class UndoConversion(Command):
    """The student (instructor) a conversion asked for was refused (``reason``: e.g.
    duplicate_email): the prospect may convert to ``role`` again. Sent by the
    reservation step that refused it (``reactions.compensations``)."""

    type: Literal["UndoConversion"] = "UndoConversion"
    role: str
    reason: str


ProspectCommand = Annotated[
    CreateProspect
    | UpdateProspect
    | MergeProspect
    | AbsorbProspect
    | CompleteMerge
    | CancelMerge
    | ConvertProspect
    | UndoConversion,
    Field(discriminator="type"),
]
