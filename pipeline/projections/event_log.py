"""The ``event_log`` archive: every event of every aggregate topic, for audit and history.

ReplacingMergeTree on (aggregate_type, aggregate_id, aggregate_version): an event that
reaches the topic twice (a command replayed after a crash yields byte-identical events)
or a full replay collapses to one row under ``FINAL``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.common import topics
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from connectors.store import QueryStore


def ddl(tables: Mapping[str, str]) -> list[str]:
    """The statements that create ``tables["event_log"]`` (IF NOT EXISTS, idempotent)."""
    name = tables["event_log"]
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {name} (
            event_id UUID,
            event_type LowCardinality(String),
            schema_version UInt16,
            aggregate_type LowCardinality(String),
            aggregate_id String,
            aggregate_version UInt64,
            occurred_at DateTime64(6, 'UTC'),
            producer LowCardinality(String),
            correlation_id String,
            causation_id String,
            actor String,
            data String,
            topic LowCardinality(String),
            partition UInt32,
            offset UInt64
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(occurred_at)
        ORDER BY (aggregate_type, aggregate_id, aggregate_version)
        """,
        # tables made before envelopes carried an actor (their old rows read as '')
        f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS actor String AFTER causation_id",
    ]


DDL = tuple(ddl({"event_log": "event_log"}))

COLUMNS = (
    "event_id", "event_type", "schema_version", "aggregate_type", "aggregate_id",
    "aggregate_version", "occurred_at", "producer", "correlation_id", "causation_id", "actor",
    "data", "topic", "partition", "offset",
)  # fmt: skip

HISTORY_SQL = """
    SELECT event_id, event_type, schema_version, aggregate_version, occurred_at, producer,
           correlation_id, causation_id, actor, data, topic, partition, offset
    FROM event_log FINAL
    WHERE aggregate_type = {aggregate_type:String} AND aggregate_id = {aggregate_id:String}
    ORDER BY aggregate_version
"""


def data_json(data: dict[str, Any]) -> str:
    """An event's ``data`` as sorted JSON text (datetimes ISO-8601)."""
    return orjson.dumps(data, default=_json_default, option=orjson.OPT_SORT_KEYS).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def envelope_of(row: Mapping[str, Any], aggregate_type: str, aggregate_id: str) -> Envelope:
    """A ``HISTORY_SQL`` row back into the envelope it archived (``data`` parsed)."""
    return Envelope(
        event_id=str(row["event_id"]), event_type=row["event_type"],
        schema_version=int(row["schema_version"]), aggregate_type=aggregate_type,
        aggregate_id=aggregate_id, aggregate_version=int(row["aggregate_version"]),
        occurred_at=row["occurred_at"], producer=row["producer"],
        correlation_id=row["correlation_id"], causation_id=row["causation_id"],
        actor=row["actor"], data=orjson.loads(row["data"]),
    )  # fmt: skip


def row(env: Envelope, topic: str, partition: int, offset: int) -> list[Any]:
    return [
        env.event_id, env.event_type, env.schema_version, env.aggregate_type, env.aggregate_id,
        env.aggregate_version, env.occurred_at, env.producer, env.correlation_id,
        env.causation_id, env.actor, data_json(env.data), topic, partition, offset,
    ]  # fmt: skip


async def history(
    store: QueryStore, aggregate_type: str, aggregate_id: str
) -> list[dict[str, Any]]:
    """Every event of one aggregate, oldest first (columns as ``HISTORY_SQL``; ``data`` is
    the JSON text of the event's data); empty if it has none."""
    return await store.query(
        HISTORY_SQL, {"aggregate_type": aggregate_type, "aggregate_id": aggregate_id}
    )


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    """Archive the batch: one row per envelope (duplicates collapse under ``FINAL``)."""
    rows = [row(d.envelope, d.topic, d.partition, d.offset) for d in batch]
    await ctx.clickhouse.insert(ctx.tables["event_log"], rows, COLUMNS)
    return ()


PROJECTION = Projection(
    name="event_log",
    topics=tuple(topics.EVENT_TOPICS.values()),
    store=Store.CLICKHOUSE,
    handle=handle,
    tables=("event_log",),
    ddl=ddl,
    description="every event of every aggregate topic, for audit and history",
)
