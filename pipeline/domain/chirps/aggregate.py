"""``decide`` (command -> events | Rejection) and ``evolve`` (state + event -> state) of
the chirp aggregate."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.chirps.commands import DeleteChirp, PostChirp
from pipeline.domain.chirps.events import ChirpDeleted, ChirpEvent, ChirpPosted
from pipeline.domain.chirps.state import Chirp
from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.results import Rejection, RejectionReason
from pipeline.domain.values import canonical_uuid

AGGREGATE_TYPE = "chirp"

TEXT_MAX_CODE_POINTS = 280


def chirp_text(raw: Any) -> str:
    """The text of a chirp: NFC-normalised, 1-280 Unicode code points (seed 001: a chirp
    is at most 280 characters; counting code points after NFC makes "é" typed as e +
    combining accent count once, as it displays). Whitespace-only text is empty.

    Raises ``InvalidValue("text", ...)``.
    """
    if not isinstance(raw, str):
        raise InvalidValue("text", "must be a string")
    text = unicodedata.normalize("NFC", raw)
    if not text.strip():
        raise InvalidValue("text", "must not be empty")
    if len(text) > TEXT_MAX_CODE_POINTS:
        raise InvalidValue(
            "text", f"must be at most {TEXT_MAX_CODE_POINTS} characters ({len(text)} given)"
        )
    return text


def decide(state: Chirp | None, command: Command) -> list[ChirpEvent] | Rejection:
    """PostChirp on a new id -> ChirpPosted; DeleteChirp by the author -> ChirpDeleted.

    Rejections: ALREADY_EXISTS (post on an existing id), NOT_FOUND (delete of an unknown
    chirp), DELETED (delete of a deleted chirp), FORBIDDEN (delete by another user),
    INVALID (text, ids; ``field`` set).
    """
    try:
        if isinstance(command, PostChirp):
            if state is not None:
                return Rejection(RejectionReason.ALREADY_EXISTS, "chirp already exists")
            return [
                ChirpPosted(
                    chirp_id=canonical_uuid("aggregate_id", command.aggregate_id),
                    author_id=canonical_uuid("author_id", command.author_id),
                    text=chirp_text(command.text),
                )
            ]
        if isinstance(command, DeleteChirp):
            if state is None:
                return Rejection(RejectionReason.NOT_FOUND, "chirp not found")
            if state.deleted:
                return Rejection(RejectionReason.DELETED, "chirp is already deleted")
            if command.actor != state.author_id:
                return Rejection(RejectionReason.FORBIDDEN, "only the author may delete a chirp")
            return [ChirpDeleted(chirp_id=state.chirp_id, author_id=state.author_id)]
    except InvalidValue as exc:
        return Rejection(RejectionReason.INVALID, exc.message, exc.field)
    raise TypeError(f"no decide rule for {type(command).__name__}")


def evolve(state: Chirp | None, event: ChirpEvent, occurred_at: datetime) -> Chirp:
    """Raises InvalidTransition for a post on an existing chirp or a delete of none."""
    if isinstance(event, ChirpPosted):
        if state is not None:
            raise InvalidTransition(f"ChirpPosted for existing chirp {state.chirp_id}")
        return Chirp(event.chirp_id, event.author_id, event.text, occurred_at.astimezone(UTC))
    if state is None:
        raise InvalidTransition("ChirpDeleted before ChirpPosted")
    return Chirp(state.chirp_id, state.author_id, "", state.posted_at, deleted=True)
