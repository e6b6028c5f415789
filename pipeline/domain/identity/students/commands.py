"""Commands of the student aggregate and their :data:`StudentCommand` union, discriminated on
``type`` (``pipeline.domain.command``). Create and update are the person's
(``pipeline.domain.identity.person``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command
from pipeline.domain.identity.person import CreatePerson, UpdatePerson


class CreateStudent(CreatePerson):
    type: Literal["CreateStudent"] = "CreateStudent"


class UpdateStudent(UpdatePerson):
    type: Literal["UpdateStudent"] = "UpdateStudent"


class EnrollStudent(Command):
    type: Literal["EnrollStudent"] = "EnrollStudent"
    course: str


class WithdrawStudent(Command):
    type: Literal["WithdrawStudent"] = "WithdrawStudent"
    course: str


StudentCommand = Annotated[
    CreateStudent | UpdateStudent | EnrollStudent | WithdrawStudent, Field(discriminator="type")
]
