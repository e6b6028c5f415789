"""Requests to the projection runner: rebuild, promote, drop, pause, resume
(``streamfold projections``).

They travel on ``projections.control`` (one partition, so they apply in order) and name
the version they act on, which makes each one idempotent: a request read again (a runner
restarting reads the topic from its committed offset, a new one from the start) finds its
work done and changes nothing. ``app_id`` scopes a request to one install sharing the
broker with others.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Action(StrEnum):
    REBUILD = "rebuild"
    """Build ``version`` (the next number) from ``source`` beside the live version."""
    PROMOTE = "promote"
    """Make the building ``version`` live once at most ``max_lag`` records behind."""
    DROP = "drop"
    """Remove the retired (or cancel the building) ``version`` and its tables."""
    PAUSE = "pause"
    """Stop applying to the live (or building) ``version``: its checkpoint stays where it
    is, its topics keep everything, its lag grows (issue 25, seed 004)."""
    RESUME = "resume"
    """Apply to ``version`` again, from its checkpoint: nothing is lost."""


class Request(BaseModel, frozen=True):
    app_id: str
    action: Action
    projection: str
    version: int = Field(ge=1)
    source: str = "earliest"
    """``earliest``, ``time:<ISO-8601>`` (each partition's first record at or after it) or
    ``offsets:{"<topic>": {"<partition>": <first offset>}}``."""
    max_lag: int = Field(default=0, ge=0)

    def encode(self) -> bytes:
        return self.model_dump_json().encode()
