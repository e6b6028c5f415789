"""The base :class:`Command`: fields every aggregate's commands share.

Concrete commands (``pipeline.domain.users.commands``, ``pipeline.domain.partners.commands``)
subclass it and add a ``type`` Literal discriminator plus their own fields. The generic
handler (``pipeline.domain.handling.handle``) relies only on these fields.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.domain.frozen import FrozenKwOnly

__all__ = ["Command"]


class Command(metaclass=FrozenKwOnly):
    """Fields common to every command. It and each subclass are frozen, slotted, keyword-only
    dataclasses (:class:`~pipeline.domain.frozen.FrozenKwOnly` applies the decorator).

    command_id: client-chosen unique id; the idempotency key (a retry reuses it).
    aggregate_id: the target aggregate's id (canonical UUID string), e.g. a user or partner id.
    issued_at: tz-aware datetime; becomes the events' ``occurred_at`` (in UTC).
    expected_version: optimistic-concurrency guard; None means "any version".
    correlation_id: request correlation id; defaults to ``command_id`` on events.
    actor: user id of whoever issued the command (None for system/seed).
    """

    command_id: str
    aggregate_id: str
    issued_at: datetime
    expected_version: int | None = None
    correlation_id: str | None = None
    actor: str | None = None
