"""Events of the chirp aggregate and their :data:`ChirpEvent` union: each one's fields are the
``data`` record of ``schemas/avro/chirp/<event_type>.v<schema_version>.avsc``."""

from __future__ import annotations

from pipeline.domain.event import DomainEvent


class ChirpPosted(DomainEvent, version=1):
    """A chirp was posted; ``text`` is NFC, 1-280 code points. Its time is the envelope's."""

    chirp_id: str
    author_id: str
    text: str


class ChirpDeleted(DomainEvent, version=1):
    """A chirp was deleted by its author: gone from every timeline and every read."""

    chirp_id: str
    author_id: str


ChirpEvent = ChirpPosted | ChirpDeleted
