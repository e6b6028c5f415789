"""Where a command enters the write side: one rule, shared by the API and the CLI.

A command that another aggregate must admit (a follow: its followee; a chirp: its author;
``pipeline.domain.admission``) enters at that aggregate's command topic keyed by its id
(its ``type`` tells it from that aggregate's own commands); a command that must reserve
unique values enters at its aggregate's reservations topic keyed by its first claim;
every other command goes straight to ``<aggregate>.commands`` keyed by its aggregate id
(the keys are drawn in README.md, "How it fits together").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline.domain.admission import ADMITTING_AGGREGATE
from pipeline.write.aggregates import Aggregate, aggregate_named, aggregate_of
from pipeline.write.codecs import Reservation, command_dict, encode_command, encode_reservation
from schemas.uuids import uuid5_text

ADMITTED = "streamfold-admitted"
"""Header of a command the admitting aggregate let through, on its own topic (value
``b"1"``). Trusted like the topic itself: whoever may produce there may set it."""

_IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c5a2e-3b7d-5e2f-9a41-2d7c1e0b9f55")
_AGGREGATE_NAMESPACE = uuid.UUID("0b8e4f61-92c3-5d1a-8f27-5c4b3a6e1d09")


def command_id_for(idempotency_key: str | None, *, caller: str | None = None) -> str:
    """A client's Idempotency-Key -> a stable command id (uuid5), else a fresh uuid4.

    ``caller`` scopes the key: the command id is uuid5 of (caller, key), so two callers
    who send the same key (``retry-1``, or one UUID) issue two different commands and
    neither is answered with the other's result. The API passes the user id of the token
    holder. Without a caller (ids the API derives from another id) the key alone: a key
    that is itself a UUID is used as is.
    """
    if not idempotency_key:
        return str(uuid.uuid4())
    if caller is not None:
        # a JSON pair: no caller and key can be shifted into another pair's. The standard
        # library's text on purpose: it names command ids already handed out (ASCII, ", "),
        # so a client's retry after an upgrade still finds its first answer.
        scoped = json.dumps([caller, idempotency_key])
        return uuid5_text(_IDEMPOTENCY_NAMESPACE, scoped)
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return uuid5_text(_IDEMPOTENCY_NAMESPACE, idempotency_key)


def new_aggregate_id(command_id: str) -> str:
    """The id a create command gives its aggregate: derived from the command id, so a
    resubmitted create addresses the same aggregate and is recognised as a duplicate."""
    return uuid5_text(_AGGREGATE_NAMESPACE, command_id)


class ClaimKeys:
    """What a uniqueness claim is called on Kafka: ``<kind>:<HMAC-SHA256 hex of the value>``.

    A claim's key partitions ``<aggregate>.reservations`` and keys its table's changelog,
    both kept forever; the plain value (``email:ada@example.org``) would put every address
    there, and seed 003 keeps personal data out of Kafka keys and headers. The hash is
    keyed by the install's claims key (``Settings.claims_key``): unguessable without it,
    stable with it. Uniqueness rests on that key never changing: under a new key every
    value could be claimed a second time (``deploy/secrets.py`` refuses to make one
    silently). The kind prefix stays readable: it picks the rejection reason.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the claims key must be at least 16 bytes")
        self._secret = secret

    def key(self, claim: str) -> str:
        """``"email:ada@example.org"`` -> ``"email:<64 hex chars>"``."""
        kind, _, value = claim.partition(":")
        digest = hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{digest}"

    def keys(self, claims: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.key(c) for c in claims)

    def for_command(self, aggregate: Aggregate, command: Any) -> tuple[str, ...]:
        """The keys of the claims ``command`` must hold, in reservation order."""
        return self.keys(aggregate.claims_for(command))

    def held(self, aggregate: Aggregate, state: Any) -> frozenset[str]:
        """The keys of the claims an aggregate in ``state`` holds."""
        return frozenset(self.keys(aggregate.claims_held(state)))


def submission(command: Any, claim_keys: ClaimKeys) -> tuple[str, bytes, bytes]:
    """(topic, key, value) to produce for ``command``."""
    aggregate = aggregate_of(command)
    admitter = aggregate.admitted_by(command)
    if admitter is not None:
        return admission(admitter, encode_command(command))
    claims = claim_keys.for_command(aggregate, command)
    if claims and aggregate.spec.reservations_topic:
        message = Reservation(
            op="reserve", owner=command.aggregate_id, claims=claims, command=command_dict(command)
        )
        return aggregate.spec.reservations_topic, message.key.encode(), encode_reservation(message)
    return aggregate.spec.commands_topic, command.aggregate_id.encode(), encode_command(command)


def admission(admitter: str, value: bytes) -> tuple[str, bytes, bytes]:
    """(topic, key, value) that asks aggregate ``admitter`` (of ``ADMITTING_AGGREGATE``'s
    type) to admit a command (``value``: the command as encoded)."""
    gate = aggregate_named(ADMITTING_AGGREGATE)
    return gate.spec.commands_topic, admitter.encode(), value


def header(
    headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None, name: str
) -> bytes | None:
    """The value of header ``name`` in a consumed record's headers (aiokafka's list of
    pairs, or a mapping), or None."""
    if not headers:
        return None
    if isinstance(headers, Mapping):
        return headers.get(name)
    for key, value in headers:
        if key == name:
            return value
    return None
