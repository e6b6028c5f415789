"""Partner management requests (seed 002): partners, systems, structures, origins, read tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.models.common import STRICT


class PartnerCreate(BaseModel):
    model_config = STRICT
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(max_length=254)
    contact_person: str | None = Field(default=None, max_length=200)
    max_systems: int = Field(default=10, ge=1, le=100)


class SystemCreate(BaseModel):
    model_config = STRICT
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    unknown_events: Literal["accept", "reject"] = "accept"


class StructureDefine(BaseModel):
    model_config = STRICT
    json_schema: dict[str, Any] = Field(description="JSON Schema of the event's properties.")
    required: bool = Field(
        default=True, description="Reject non-conforming events (else accept, flagged)."
    )


class PolicySet(BaseModel):
    model_config = STRICT
    policy: Literal["accept", "reject"]


class OriginsSet(BaseModel):
    model_config = STRICT
    origins: list[str] = Field(
        max_length=50,
        description="Web origins (scheme://host[:port]; https://*.example.com for "
        "subdomains) whose pages may send this system's events; [] allows every origin.",
    )


class ReadTokenCreate(BaseModel):
    model_config = STRICT
    name: str = Field(min_length=1, max_length=100, description="What the token is for.")


class PartnerSummary(BaseModel):
    partner_id: str
    name: str
    email: str
    created_at: datetime
    status: Literal["active", "inactive"] | None = Field(
        description="None until the partner_keys read model has applied the partner."
    )
    systems: int
    active_systems: int


class PartnerPage(BaseModel):
    items: list[PartnerSummary]
    total: int
    page: int
    page_size: int
