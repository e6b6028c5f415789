"""Commands of the follow aggregate and their :data:`FollowCommand` union, discriminated on
``type`` (``pipeline.domain.command``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pipeline.domain.command import Command


class FollowUser(Command):
    """``follower_id`` (the acting user) starts following ``followee_id``."""

    type: Literal["FollowUser"] = "FollowUser"
    follower_id: str
    followee_id: str


class UnfollowUser(Command):
    """``follower_id`` stops following ``followee_id``."""

    type: Literal["UnfollowUser"] = "UnfollowUser"
    follower_id: str
    followee_id: str


FollowCommand = Annotated[FollowUser | UnfollowUser, Field(discriminator="type")]
