"""Commands of the instructor aggregate and their :data:`InstructorCommand` union, discriminated on
``type`` (``pipeline.domain.command``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command

__all__ = ["CreateInstructor", "DeactivateInstructor", "InstructorCommand", "UpdateInstructor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInstructor(Command):
    type: Literal["CreateInstructor"] = "CreateInstructor"
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateInstructor(Command):
    """Replace the fields given (None: unchanged; a blank phone removes it)."""

    type: Literal["UpdateInstructor"] = "UpdateInstructor"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeactivateInstructor(Command):
    type: Literal["DeactivateInstructor"] = "DeactivateInstructor"
    reason: str = ""


InstructorCommand = Annotated[
    CreateInstructor | UpdateInstructor | DeactivateInstructor, Field(discriminator="type")
]
