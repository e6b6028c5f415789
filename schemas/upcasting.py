"""Upcasters: pure functions that turn an event's ``data`` from schema version N into N+1.

Published events are never rewritten. Changing an event's shape means adding
``<EventType>.v<N+1>.avsc`` plus an upcaster from N, so old events are read as the newest
version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.exceptions import SchemaError

__all__ = ["DEFAULT_UPCASTERS", "Upcaster", "Upcasters"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """A registry of upcasters keyed by ``(event_type, from_version)``."""

    def __init__(self) -> None:
        self._chain: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to turn ``event_type`` data from ``from_version`` (>= 1) into
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

    def upcast(self, event_type: str, version: int, data: dict[str, Any]) -> tuple[int, dict]:
        """Apply the chain ``version -> version+1 -> ...`` while a next step is registered.

        Returns ``(final_version, data)``; unchanged when no upcaster applies.
        """
        while (fn := self._chain.get((event_type, version))) is not None:
            data = fn(data)
            version += 1
        return version, data


# Empty on purpose: every event is still at v1.
DEFAULT_UPCASTERS = Upcasters()
