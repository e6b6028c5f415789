"""Tracking analytics answers (``/v1/analytics/*``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field


class TrackedEvent(BaseModel):
    event_id: UUID
    system_id: str
    event: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime = Field(description="When it happened, per the sender (UTC).")
    received_at: datetime = Field(description="When the API accepted it (UTC).")
    properties: dict[str, Any]
    context: dict[str, Any]
    schema_valid: bool


class EventPage(BaseModel):
    items: list[TrackedEvent]
    next_cursor: str | None = Field(
        description="Pass as ``cursor`` for the next page; null on the last page."
    )


class EventStat(BaseModel):
    event: str
    events: int
    unique_users: int = Field(description="Exact count of distinct user/anonymous ids.")


class StatsTotals(BaseModel):
    events: int
    unique_users: int = Field(description="Distinct ids over all names (not a sum).")
    first_at: datetime | None = Field(description="Earliest event timestamp; null if none.")
    last_at: datetime | None = Field(description="Latest event timestamp; null if none.")


class Stats(BaseModel):
    items: list[EventStat] = Field(description="Per event name, most frequent first.")
    totals: StatsTotals


class Bounds(BaseModel):
    events: int = Field(description="Events in scope.")
    first_at: datetime | None = Field(description="Oldest event timestamp; null if none.")
    last_at: datetime | None = Field(description="Newest event timestamp; null if none.")


class TimeseriesPoint(BaseModel):
    bucket: datetime = Field(description="Bucket start (UTC; weeks start on Monday).")
    events: int
    unique_users: int = Field(description="Approximate (ClickHouse uniq), exact when small.")


class FunnelStep(BaseModel):
    event: str
    users: int = Field(description="Distinct ids that reached this step or a later one.")


class Funnel(BaseModel):
    steps: list[FunnelStep]


class Rejection(BaseModel):
    system_id: str
    event: str
    message_id: str
    reasons: list[str]
    received_at: datetime


class RejectionPage(BaseModel):
    items: list[Rejection] = Field(description="Newest first.")
    total: int = Field(description="All rejections in scope.")
