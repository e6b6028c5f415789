"""Where a command enters the write side: one rule, shared by the API and the CLI.

A command that must reserve unique values enters at its aggregate's reservations topic
keyed by its first claim; every other command goes straight to ``<aggregate>.commands``
keyed by its aggregate id (DESIGN.md: key = aggregate id, or the unique value it reserves).
"""

from __future__ import annotations

import uuid
from typing import Any

from pipeline.aggregates import aggregate_of
from pipeline.codecs import Reservation, command_dict, encode_command, encode_reservation

_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c5a2e-3b7d-5e2f-9a41-2d7c1e0b9f55")
_AGGREGATE_NAMESPACE = uuid.UUID("0b8e4f61-92c3-5d1a-8f27-5c4b3a6e1d09")


def command_id_for(idempotency_key: str | None) -> str:
    """A client's Idempotency-Key -> a stable command id (uuid5), else a fresh uuid4.

    A key that is itself a UUID is used as is, so SDKs that send uuids see them back.
    """
    if not idempotency_key:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, idempotency_key))


def new_aggregate_id(command_id: str) -> str:
    """The id a create command gives its aggregate: derived from the command id, so a
    resubmitted create addresses the same aggregate and is recognised as a duplicate."""
    return str(uuid.uuid5(_AGGREGATE_NAMESPACE, command_id))


def submission(command: Any) -> tuple[str, bytes, bytes]:
    """(topic, key, value) to produce for ``command``."""
    aggregate = aggregate_of(command)
    claims = aggregate.claims_for(command)
    if claims and aggregate.reservations_topic:
        message = Reservation(
            op="reserve", owner=command.aggregate_id, claims=claims, command=command_dict(command)
        )
        return aggregate.reservations_topic, message.key.encode(), encode_reservation(message)
    return aggregate.commands_topic, command.aggregate_id.encode(), encode_command(command)
