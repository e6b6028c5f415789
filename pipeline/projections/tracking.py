"""Tracking analytics in ClickHouse: the ``tracking_events`` fact table and its rollups.

``tracking_events`` is a MergeTree partitioned by month and ordered by (system, event
name, time), the shape of every analyst query (one system, some names, a time range).
Two materialized views roll it up per minute on insert: ``tracking_minute`` (event counts
and ``uniq`` states of distinct users, AggregatingMergeTree) for time series, stats and
the dashboard.

Exactly-once into ClickHouse: each row carries its source topic/partition/offset. Before a
batch is inserted, the sink drops every record at or below the highest offset already
stored for its partition (read from the table itself once per partition assignment), so
a batch replayed after a crash is never inserted twice; one INSERT is one atomic part per
month partition. ``SELECT count(), uniqExact(event_id)`` agree.
"""

from __future__ import annotations

from typing import Any

from pipeline.domain.envelope import Envelope

DDL = (
    """
    CREATE TABLE IF NOT EXISTS tracking_events (
        event_id UUID,
        partner_id String,
        system_id String,
        event LowCardinality(String),
        message_id String,
        user_id Nullable(String),
        anonymous_id Nullable(String),
        distinct_id String,
        timestamp DateTime64(3, 'UTC'),
        received_at DateTime64(3, 'UTC'),
        properties String,
        context String,
        schema_valid UInt8,
        structure_version Nullable(UInt32),
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (system_id, event, timestamp)
    """,
    """
    CREATE TABLE IF NOT EXISTS tracking_minute (
        system_id String,
        event LowCardinality(String),
        minute DateTime('UTC'),
        events SimpleAggregateFunction(sum, UInt64),
        users AggregateFunction(uniq, String)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(minute)
    ORDER BY (system_id, event, minute)
    """,
    """
    CREATE MATERIALIZED VIEW IF NOT EXISTS tracking_minute_mv TO tracking_minute AS
    SELECT system_id, event, toStartOfMinute(timestamp) AS minute,
           count() AS events, uniqState(distinct_id) AS users
    FROM tracking_events
    GROUP BY system_id, event, minute
    """,
    """
    CREATE TABLE IF NOT EXISTS tracking_rejections (
        system_id String,
        partner_id String,
        event String,
        message_id String,
        reasons Array(String),
        payload String,
        received_at DateTime64(3, 'UTC'),
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(received_at)
    ORDER BY (system_id, received_at, partition, offset)
    """,
)

COLUMNS = (
    "event_id", "partner_id", "system_id", "event", "message_id", "user_id", "anonymous_id",
    "distinct_id", "timestamp", "received_at", "properties", "context", "schema_valid",
    "structure_version", "topic", "partition", "offset",
)  # fmt: skip

REJECTION_COLUMNS = (
    "system_id", "partner_id", "event", "message_id", "reasons", "payload", "received_at",
    "topic", "partition", "offset",
)  # fmt: skip

STORED_OFFSETS_SQL = """
    SELECT partition, max(offset) AS offset FROM tracking_events
    WHERE topic = {topic:String} AND partition IN {partitions:Array(UInt32)}
    GROUP BY partition
"""


def row(env: Envelope, topic: str, partition: int, offset: int) -> list[Any]:
    d = env.data
    return [
        env.event_id, d["partner_id"], d["system_id"], d["event"], d["message_id"],
        d["user_id"], d["anonymous_id"], d["user_id"] or d["anonymous_id"] or "",
        d["timestamp"], d["received_at"], d["properties"], d["context"],
        int(bool(d["schema_valid"])), d["structure_version"], topic, partition, offset,
    ]  # fmt: skip
