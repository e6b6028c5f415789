"""What every area's models share: strict parsing, domain values, a command's outcome."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from pipeline.domain.errors import InvalidValue
from pipeline.domain.values import Email, parse_name

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


def domain_value(parse: Any, raw: str) -> str | None:
    """``parse(raw)`` as text (None when the parser says there is no value, as
    ``profile.parse_phone`` does for a blank phone); pydantic's ValueError for an
    ``InvalidValue``."""
    try:
        value = parse(raw)
    except InvalidValue as exc:
        raise ValueError(exc.message) from exc
    return None if value is None else str(value)


def name_value(v: str | None, info: ValidationInfo) -> str | None:
    """A ``field_validator`` for a first or last name: ``values.parse_name`` (stripped,
    1-100 characters), named by its field; None (an optional field left out) stays None."""
    return None if v is None else domain_value(lambda raw: parse_name(info.field_name, raw), v)


def email_value(v: str | None) -> str | None:
    """A ``field_validator`` for an e-mail: ``values.Email`` (normalised); None stays None."""
    return None if v is None else domain_value(Email.parse, v)


class CommandOutcome(BaseModel):
    """What a command route answers on success (201/200)."""

    command_id: str
    id: str = Field(description="The aggregate id.")
    version: int
    event_ids: list[str]
