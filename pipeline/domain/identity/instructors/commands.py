"""Commands of the instructor aggregate and their :data:`InstructorCommand` union,
discriminated on ``type`` (``pipeline.domain.command``). Create and update are the
person's (``pipeline.domain.identity.person``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command
from pipeline.domain.identity.person import CreatePerson, UpdatePerson


class CreateInstructor(CreatePerson):
    type: Literal["CreateInstructor"] = "CreateInstructor"


class UpdateInstructor(UpdatePerson):
    type: Literal["UpdateInstructor"] = "UpdateInstructor"


class DeactivateInstructor(Command):
    type: Literal["DeactivateInstructor"] = "DeactivateInstructor"
    reason: str = ""


class ReactivateInstructor(Command):
    """A deactivated instructor teaches again (seed 003)."""

    type: Literal["ReactivateInstructor"] = "ReactivateInstructor"


InstructorCommand = Annotated[
    CreateInstructor | UpdateInstructor | DeactivateInstructor | ReactivateInstructor,
    Field(discriminator="type"),
]
