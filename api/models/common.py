"""What every area's models share: strict parsing, domain values, a command's outcome."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipeline.domain.errors import InvalidValue

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def domain_value(parse: Any, raw: str) -> str:
    try:
        return str(parse(raw))
    except InvalidValue as exc:
        raise ValueError(exc.message) from exc


class CommandOutcome(BaseModel):
    """What a command route answers on success (201/200)."""

    command_id: str
    id: str = Field(description="The aggregate id.")
    version: int
    event_ids: list[str]
