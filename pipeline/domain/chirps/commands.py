"""Commands of the chirp aggregate and their :data:`ChirpCommand` union, discriminated on
``type`` (``pipeline.domain.command``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command


class PostChirp(Command):
    """Post ``text`` as ``author_id`` (the acting user: the API sets it from the token)."""

    type: Literal["PostChirp"] = "PostChirp"
    author_id: str
    text: str


class DeleteChirp(Command):
    """Delete the chirp; only its author may (``actor`` must be the author)."""

    type: Literal["DeleteChirp"] = "DeleteChirp"


ChirpCommand = Annotated[PostChirp | DeleteChirp, Field(discriminator="type")]
