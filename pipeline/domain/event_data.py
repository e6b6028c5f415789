"""The one mapping between a domain event dataclass and its ``data`` dict (the Avro
``data`` record), shared by every aggregate's ``to_data``/``from_data``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pipeline.domain.errors import InvalidValue, UnknownEventType


def to_data(event: Any) -> dict[str, Any]:
    """The event's ``data`` dict: field name -> value (str, int, bool, None, datetime, or a
    list for a tuple field: the form Avro and JSON decode to, so an envelope equals itself
    after a round trip)."""
    return {
        f.name: list(value) if isinstance(value := getattr(event, f.name), tuple) else value
        for f in dataclasses.fields(event)
    }


def from_data(registry: Mapping[str, type], event_type: str, data: dict[str, Any]) -> Any:
    """Rebuild an event of ``registry[event_type]`` from its ``data`` dict.

    Datetime fields may be datetimes or ISO-8601 strings (JSON transports carry strings);
    tuple fields may be lists (Avro and JSON arrays).
    Extra keys are ignored (a reader may see fields it does not know).

    Raises:
        UnknownEventType: ``event_type`` is not in ``registry``.
        InvalidValue: a field is missing.
    """
    cls = registry.get(event_type)
    if cls is None:
        raise UnknownEventType(event_type)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            raise InvalidValue(f.name, f"missing from {event_type} data")
        value = data[f.name]
        # annotations are strings under `from __future__ import annotations`
        if "datetime" in str(f.type) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        elif str(f.type).startswith("tuple") and isinstance(value, list):
            value = tuple(value)  # Avro and JSON arrays decode as lists
        kwargs[f.name] = value
    return cls(**kwargs)
