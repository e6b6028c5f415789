"""How far fan-out goes: the numbers of the timeline rules (seed 001; defaults from
issue 10). Pure configuration, read by the timeline projection
(``pipeline/projections/timelines.py``) and set through ``Settings.timelines``
(``STREAMFOLD_TIMELINES__CELEBRITY_FOLLOWERS=...``)."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class TimelinePolicy(BaseModel):
    """The fan-out numbers. Counts are chirps or followers."""

    model_config = ConfigDict(frozen=True)

    cap: int = Field(default=800, ge=10, le=10_000, description="Home timeline length.")
    backfill: int = Field(
        default=800,
        ge=1,
        le=10_000,
        description="Chirps copied into a timeline on follow (seed 001: up to the cap).",
    )
    celebrity_followers: int = Field(
        default=10_000, ge=2, description="Followers at which an author's chirps are pulled."
    )
    hysteresis: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="An author stays a celebrity until below (1 - hysteresis) x the line.",
    )
    live_stream_max: int = Field(
        default=10_000, ge=100, description="Entries kept in the live stream (Last-Event-ID)."
    )

    @property
    def demote_below(self) -> int:
        """Followers under which a celebrity is a regular author again."""
        return max(1, math.floor(self.celebrity_followers * (1 - self.hysteresis)))
