"""The chirp aggregate: one short post by one user, posted once and possibly deleted.

Aggregate id = chirp id (derived from the PostChirp command id, so a resubmitted post is
a duplicate, not a second chirp). Time comes from the envelope (``occurred_at``); the
decide rules are pure and deterministic.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field

from pipeline.domain.command import Command
from pipeline.domain.errors import InvalidTransition, InvalidValue
from pipeline.domain.handling import AggregateSpec
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


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PostChirp(Command):
    """Post ``text`` as ``author_id`` (the acting user: the API sets it from the token)."""

    type: Literal["PostChirp"] = "PostChirp"
    author_id: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteChirp(Command):
    """Delete the chirp; only its author may (``actor`` must be the author)."""

    type: Literal["DeleteChirp"] = "DeleteChirp"


ChirpCommand = Annotated[PostChirp | DeleteChirp, Field(discriminator="type")]

# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChirpPosted:
    """A chirp was posted; ``text`` is NFC, 1-280 code points. Its time is the envelope's."""

    event_type: ClassVar[str] = "ChirpPosted"
    schema_version: ClassVar[int] = 1

    chirp_id: str
    author_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ChirpDeleted:
    """A chirp was deleted by its author: gone from every timeline and every read."""

    event_type: ClassVar[str] = "ChirpDeleted"
    schema_version: ClassVar[int] = 1

    chirp_id: str
    author_id: str


ChirpEvent = ChirpPosted | ChirpDeleted


# -- state, decide, evolve ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chirp:
    chirp_id: str
    author_id: str
    text: str
    posted_at: datetime
    deleted: bool = False


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


def state_to_dict(state: Chirp) -> dict[str, Any]:
    return {
        "chirp_id": state.chirp_id,
        "author_id": state.author_id,
        "text": state.text,
        "posted_at": state.posted_at.isoformat(),
        "deleted": state.deleted,
    }


def state_from_dict(d: dict[str, Any]) -> Chirp:
    return Chirp(
        d["chirp_id"],
        d["author_id"],
        d["text"],
        datetime.fromisoformat(d["posted_at"]),
        bool(d["deleted"]),
    )


CHIRP_SPEC = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    topic="chirps",
    decide=decide,
    evolve=evolve,
    state_to_dict=state_to_dict,
    state_from_dict=state_from_dict,
    events=get_args(ChirpEvent),
    commands=get_args(get_args(ChirpCommand)[0]),
)
EVENT_TYPES = CHIRP_SPEC.event_types
COMMAND_TYPES = CHIRP_SPEC.command_types
to_data, from_data = CHIRP_SPEC.to_data, CHIRP_SPEC.from_data
