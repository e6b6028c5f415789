"""The projection catalog and checkpoints, stored in ClickHouse beside the read models.

Every projection has numbered **versions** (generations of its read model): one ``live``
(readers see it), at most one ``building`` (a rebuild replaying its topics into tables of
its own), any number ``retired`` (kept until dropped) or ``dropped``. ``promoting`` marks
a version whose table exchange has begun; the runner finishes it on its next start.

Physical tables: the live version of a ClickHouse projection writes the tables readers
name (``users``, ``event_log``); any other version writes ``<table>__v<N>``. Promotion
exchanges the two atomically (``EXCHANGE TABLES``), so readers never see a half-built read
model. Each table's ``COMMENT`` says which version its rows belong to
(``streamfold:<projection>:v<N>``); a comment moves with its table on an exchange, so after
a crash mid-promotion the runner can tell which data is where (:func:`table_versions`).
A Redis projection's version writes its keys under ``v<N>:`` (:func:`key_prefix`) until
promoted; ``LIVE_KEY`` plays the comments' part there.

Checkpoints: the offsets a version has applied, per partition, written after the version's
rows (ClickHouse) or in the same MULTI/EXEC (Redis: ``CHECKPOINT_KEY``). They, not the
consumer group's committed offsets, say where a version resumes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.store import QueryStore

DDL = (
    """
    CREATE TABLE IF NOT EXISTS projection_versions (
        name String,
        version UInt32,
        state LowCardinality(String),
        source String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(3, 'UTC'),
        last_error String
    ) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (name, version)
    """,
    """
    CREATE TABLE IF NOT EXISTS projection_checkpoints (
        name String,
        version UInt32,
        topic String,
        partition UInt32,
        offset Int64,
        at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(offset) ORDER BY (name, version, topic, partition)
    """,
)
# The column is ``name``, not ``projection``: PROJECTION is a keyword in CREATE TABLE.
# ReplacingMergeTree(offset): a zombie member writing an older checkpoint after its
# successor wrote a newer one never moves a version back.

VERSION_COLUMNS = ("name", "version", "state", "source", "created_at", "updated_at",
                   "last_error")  # fmt: skip
CHECKPOINT_COLUMNS = ("name", "version", "topic", "partition", "offset", "at")

CHECKPOINT_KEY = "streamfold:projection:{projection}:v{version}:checkpoint"
"""Redis hash of a Redis projection's version: ``<topic>:<partition>`` -> last applied offset."""

LIVE_KEY = "streamfold:projection:{projection}:live"
"""Redis: the version whose keys are the live ones, set in the MULTI that swaps them (the
Redis counterpart of the tables' comments: a promotion interrupted after it is not done
twice)."""

PAUSED_KEY = "streamfold:projection:{projection}:v{version}:paused"
"""Redis: present while the version is paused (``Action.PAUSE``); a runner that starts
leaves a paused version stopped. Lost with Redis, a pause ends: the version runs again
from its checkpoint, which loses nothing."""

STATS_KEY = "streamfold:projection:{projection}:v{version}:stats"
"""Redis hash the runner refreshes each second: events_per_s, applied, last_error, at."""


class State(StrEnum):
    LIVE = "live"
    BUILDING = "building"
    PROMOTING = "promoting"
    RETIRED = "retired"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Version:
    projection: str
    version: int
    state: State
    source: str
    """Where a rebuild started: ``earliest``, ``time:<ISO-8601>`` or ``offsets:<json>``."""
    created_at: datetime
    updated_at: datetime
    last_error: str = ""

    def row(self) -> list[Any]:
        return [self.projection, self.version, str(self.state), self.source, self.created_at,
                self.updated_at, self.last_error]  # fmt: skip

    def moved(self, state: State, *, error: str = "") -> Version:
        """This version in ``state`` from now (``error``: why a request was refused)."""
        return Version(self.projection, self.version, state, self.source, self.created_at,
                       _now(), error)  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def first_version(projection: str) -> Version:
    """The version a projection starts at on an install that never ran it: live at once."""
    now = _now()
    return Version(projection, 1, State.LIVE, "earliest", now, now)


def new_version(projection: str, version: int, source: str) -> Version:
    now = _now()
    return Version(projection, version, State.BUILDING, source, now, now)


def physical(table: str, version: Version | int, *, live: bool) -> str:
    """The table ``version`` writes: ``table`` itself when live, else ``table__v<N>``."""
    number = version if isinstance(version, int) else version.version
    return table if live else f"{table}__v{number}"


def key_prefix(version: Version | int, *, live: bool) -> str:
    """What the Redis keys of ``version`` start with: nothing when live, else ``v<N>:``."""
    number = version if isinstance(version, int) else version.version
    return "" if live else f"v{number}:"


def comment(projection: str, version: int) -> str:
    return f"streamfold:{projection}:v{version}"


_COMMENT = re.compile(r"^streamfold:(?P<projection>[^:]+):v(?P<version>\d+)$")


def parse_comment(text: str) -> tuple[str, int] | None:
    match = _COMMENT.match(text or "")
    return (match["projection"], int(match["version"])) if match else None


# ------------------------------------------------------------------------------- reads
VERSIONS_SQL = """
    SELECT name, version, state, source, created_at, updated_at, last_error
    FROM projection_versions FINAL ORDER BY name, version
"""
CHECKPOINTS_SQL = """
    SELECT name, version, topic, partition, offset, at
    FROM projection_checkpoints FINAL
"""
TABLES_SQL = """
    SELECT name, comment FROM system.tables
    WHERE database = currentDatabase() AND name IN {names:Array(String)}
"""


def version_of(row: Mapping[str, Any]) -> Version:
    return Version(
        row["name"], int(row["version"]), State(row["state"]), row["source"],
        row["created_at"], row["updated_at"], row["last_error"],
    )  # fmt: skip


async def versions(store: QueryStore) -> list[Version]:
    """Every version of every projection, by projection then version."""
    return [version_of(r) for r in await store.query(VERSIONS_SQL)]


Offsets = dict[tuple[str, int], int]
"""(topic, partition) -> the last offset applied."""


async def checkpoints(store: QueryStore) -> dict[tuple[str, int], Offsets]:
    """(projection, version) -> its ClickHouse checkpoint (Redis projections keep theirs
    in Redis: ``CHECKPOINT_KEY``)."""
    out: dict[tuple[str, int], Offsets] = {}
    for r in await store.query(CHECKPOINTS_SQL):
        out.setdefault((r["name"], int(r["version"])), {})[(r["topic"], int(r["partition"]))] = int(
            r["offset"]
        )
    return out


async def table_versions(store: QueryStore, names: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Physical table name -> the (projection, version) its comment says it holds; tables
    without a streamfold comment are left out."""
    rows = await store.query(TABLES_SQL, {"names": sorted(set(names))})
    out = {}
    for r in rows:
        parsed = parse_comment(r["comment"])
        if parsed is not None:
            out[r["name"]] = parsed
    return out


def checkpoint_rows(projection: str, version: int, offsets: Offsets) -> list[list[Any]]:
    at = _now()
    return [[projection, version, t, p, o, at] for (t, p), o in sorted(offsets.items())]


def redis_fields(offsets: Offsets) -> dict[str, int]:
    """:data:`Offsets` as the fields of a ``CHECKPOINT_KEY`` hash."""
    return {f"{topic}:{partition}": offset for (topic, partition), offset in offsets.items()}


def redis_checkpoint(raw: Mapping[bytes, bytes]) -> Offsets:
    """A ``CHECKPOINT_KEY`` hash as :data:`Offsets`."""
    out: Offsets = {}
    for field, value in raw.items():
        topic, _, partition = field.decode().rpartition(":")
        out[(topic, int(partition))] = int(value)
    return out


def lag(ends: Mapping[tuple[str, int], int], applied: Offsets) -> dict[tuple[str, int], int]:
    """Records not yet applied per partition: ``ends`` are high watermarks (next offset)."""
    return {tp: max(0, end - (applied.get(tp, -1) + 1)) for tp, end in ends.items()}
