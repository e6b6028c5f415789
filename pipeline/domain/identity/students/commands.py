"""Commands of the student aggregate and their :data:`StudentCommand` union, discriminated on
``type`` (``pipeline.domain.command``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command

__all__ = ["CreateStudent", "EnrollStudent", "StudentCommand", "UpdateStudent", "WithdrawStudent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateStudent(Command):
    type: Literal["CreateStudent"] = "CreateStudent"
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateStudent(Command):
    """Replace the fields given (None: unchanged; a blank phone removes it)."""

    type: Literal["UpdateStudent"] = "UpdateStudent"
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrollStudent(Command):
    type: Literal["EnrollStudent"] = "EnrollStudent"
    course: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawStudent(Command):
    type: Literal["WithdrawStudent"] = "WithdrawStudent"
    course: str


StudentCommand = Annotated[
    CreateStudent | UpdateStudent | EnrollStudent | WithdrawStudent, Field(discriminator="type")
]
