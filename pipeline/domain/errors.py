"""Domain error hierarchy.

Every error raised by the pure domain derives from :class:`DomainError`, so callers (agents,
API) can catch the domain as a whole without catching unrelated library failures. Business
*rejections* of commands are not errors: ``decide`` returns a
:class:`pipeline.domain.results.Rejection` instead. Errors here mean invalid input to a value
object, unknown wire data, or a programming fault in event folding.
"""

from __future__ import annotations

__all__ = ["DomainError", "InvalidTransition", "InvalidValue", "UnknownEventType"]


class DomainError(Exception):
    """Root of all errors raised by ``pipeline.domain``."""


class InvalidValue(DomainError, ValueError):
    """A raw value failed validation while constructing a value object.

    Attributes:
        field: name of the offending input field (e.g. ``"email"``), used by the API to point
            at the field and by ``decide`` to fill ``Rejection.field``.
        message: human-readable reason, safe to show to the caller (never contains secrets).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownEventType(DomainError, KeyError):
    """An event type name has no registered event class.

    Raised by ``from_data`` when reading an event whose ``event_type`` this code does not know
    (e.g. produced by a newer release). Derives from ``KeyError`` because it is a failed lookup.
    """

    def __init__(self, event_type: str) -> None:
        super().__init__(event_type)
        self.event_type = event_type

    def __str__(self) -> str:
        # KeyError.__str__ reprs its argument; a plain message reads better in logs.
        return f"unknown event type {self.event_type!r}"


class InvalidTransition(DomainError):
    """An event cannot be applied to the current aggregate state.

    Raised by ``evolve``; since events are facts already decided, this signals corrupted or
    out-of-order history (e.g. ``UserUpdated`` with no prior ``UserCreated``), never bad input.
    """
