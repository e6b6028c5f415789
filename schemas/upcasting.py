"""Upcasters: pure functions that turn an event record of schema version N into N+1.

Published events are never rewritten. Changing an event's shape means adding
``<EventType>.v<N+1>.avsc`` plus an upcaster from N, so old events are read as the newest
version. An upcaster sees the whole decoded record (the envelope fields and ``data``),
because a new version may change either: v2 of every event adds the envelope's ``actor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.envelope import sdk_actor
from schemas.exceptions import SchemaError

__all__ = ["DEFAULT_UPCASTERS", "UNKNOWN_ACTOR", "Upcaster", "Upcasters"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""record of version N -> record of version N+1 (``schema_version`` is set by the chain)."""

UNKNOWN_ACTOR = "unknown"
"""The actor of an event written before envelopes carried one (schema v1)."""


class Upcasters:
    """A registry of upcasters keyed by ``(event_type, from_version)``."""

    def __init__(self) -> None:
        self._chain: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to turn an ``event_type`` record from ``from_version`` (>= 1) into
        ``from_version + 1``. ``fn`` must be pure and must not mutate its argument.
        Raises ``SchemaError`` on a bad version or a second upcaster for the same step.
        """
        if from_version < 1:
            raise SchemaError(f"upcaster for {event_type}: from_version must be >= 1")
        key = (event_type, from_version)
        if key in self._chain:
            raise SchemaError(f"an upcaster for {event_type} v{from_version} is already registered")
        self._chain[key] = fn

    def upcaster(self, event_type: str, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of :meth:`register`; returns the function unchanged."""

        def decorate(fn: Upcaster) -> Upcaster:
            self.register(event_type, from_version, fn)
            return fn

        return decorate

    def upcast(
        self, event_type: str, version: int, record: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply the chain ``version -> version+1 -> ...`` while a next step is registered.

        Returns ``(final_version, record)`` with ``record["schema_version"]`` set to the
        final version; unchanged when no upcaster applies.
        """
        while (fn := self._chain.get((event_type, version))) is not None:
            version += 1
            record = {**fn(record), "schema_version": version}
        return version, record


def _actor_unknown(record: dict[str, Any]) -> dict[str, Any]:
    # Commands carried their actor before v2, but v1 envelopes dropped it: it is lost.
    return {**record, "actor": UNKNOWN_ACTOR}


def _actor_sdk(record: dict[str, Any]) -> dict[str, Any]:
    # A tracking event's aggregate is the partner system whose key sent it: derivable.
    # v1 data knew track calls only and never corrected clock skew, so its timestamp is the
    # client's own time; the fields of the other Segment call types are empty.
    data = record["data"]
    return {
        **record,
        "actor": sdk_actor(record["aggregate_id"]),
        "data": {
            **data,
            "type": "track",
            "group_id": None,
            "previous_id": None,
            "category": None,
            "original_timestamp": data.get("timestamp"),
            "traits": "{}",
        },
    }


DEFAULT_UPCASTERS = Upcasters()
for _event_type in (
    "UserCreated", "UserUpdated", "AccountUpdated", "UserDeactivated", "UserReactivated",
    "UserDeleted", "UserLastLoginUpdated",
    "PartnerCreated", "PartnerDeactivated", "SystemAdded", "SystemDeactivated",
    "SystemReactivated", "ApiKeyRotated", "UnknownEventPolicySet", "EventStructureDefined",
    "EventStructureRemoved",
):  # fmt: skip
    DEFAULT_UPCASTERS.register(_event_type, 1, _actor_unknown)
DEFAULT_UPCASTERS.register("TrackingEventRecorded", 1, _actor_sdk)
