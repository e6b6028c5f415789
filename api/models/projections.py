"""Read-model operations: rebuild and promote requests."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Rebuild(BaseModel):
    start: str = Field(
        default="earliest",
        alias="from",
        description="`earliest`, an ISO-8601 time (each partition from its first record at "
        'or after it) or offsets as JSON: `{"<topic>": {"<partition>": <offset>}}`.',
    )


class Promote(BaseModel):
    max_lag: int | None = Field(
        default=None, ge=0, description="Records the new version may still be behind "
        "(default: STREAMFOLD_PROJECTION_PROMOTE_MAX_LAG).",
    )  # fmt: skip
