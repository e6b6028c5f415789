"""Tracking analytics in ClickHouse: the ``tracking_events`` fact table and its rollups.

``tracking_events`` is a MergeTree partitioned by month and ordered by (system, event
name, time), the shape of every analyst query (one system, some names, a time range).
``tracking_minute`` is a view rolling it up per minute at read time (event counts and
``uniq`` states of distinct users), which the time series read (stats read
``tracking_events``); it cannot disagree with its source after a crash.

Exactly-once into ClickHouse: the event id is deterministic (uuid5 of system and message
id) and the sink inserts an id only if the table does not hold it yet, received within the
dedup window; a bloom-filter index on event_id keeps that check cheap. So SDK retries,
replays and re-delivered batches are stored once, and ``SELECT count(), uniqExact(event_id)``
agree. ``tracking_rejections`` is a ReplacingMergeTree on (system, received_at, message
id): a replayed rejection collapses under FINAL.

Segment call types share the table (``type``: track, identify, page, screen, group, alias).
``event`` is what analytics group by: a track's name, a page's/screen's ``name`` (or
"page"/"screen"), the type itself for identify/group/alias; so ``WHERE type = 'page'``
lists page views and ``GROUP BY event`` counts them per page. ``traits`` holds an identify's
or group's traits as JSON text (``JSONExtractString(traits, 'email')``), ``properties`` the
properties of track/page/screen. ``timestamp`` is skew-corrected by the SDK's sentAt;
``original_timestamp`` is the client's own time. The rollup groups by event name only, so a
page and a track call of one name count together there; ``tracking_events`` tells them apart.
"""

from __future__ import annotations

from typing import Any

from connectors.clickhouse import ClickHouse
from pipeline.domain.envelope import Envelope

DDL = (
    """
    CREATE TABLE IF NOT EXISTS tracking_events (
        event_id UUID,
        partner_id String,
        system_id String,
        type LowCardinality(String) DEFAULT 'track',
        event LowCardinality(String),
        message_id String,
        user_id Nullable(String),
        anonymous_id Nullable(String),
        distinct_id String,
        group_id Nullable(String),
        previous_id Nullable(String),
        category Nullable(String),
        timestamp DateTime64(3, 'UTC'),
        original_timestamp DateTime64(3, 'UTC') DEFAULT timestamp,
        received_at DateTime64(3, 'UTC'),
        properties String,
        traits String DEFAULT '{}',
        context String,
        schema_valid UInt8,
        structure_version Nullable(UInt32),
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        INDEX event_id_bloom event_id TYPE bloom_filter GRANULARITY 1
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (system_id, event, timestamp)
    """,
    # tables made before Segment call types (their old rows read as track calls whose client
    # time is their timestamp)
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS type LowCardinality(String) "
    "DEFAULT 'track' AFTER system_id",
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS group_id Nullable(String) "
    "AFTER distinct_id",
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS previous_id Nullable(String) "
    "AFTER group_id",
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS category Nullable(String) "
    "AFTER previous_id",
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS original_timestamp "
    "DateTime64(3, 'UTC') DEFAULT timestamp AFTER timestamp",
    "ALTER TABLE tracking_events ADD COLUMN IF NOT EXISTS traits String DEFAULT '{}' "
    "AFTER properties",
    # The per-minute rollup was an AggregatingMergeTree fed by a materialized view. A
    # SIGKILL between ClickHouse committing an insert's part and its view's part left rows
    # in tracking_events and not in the rollup, and the sink's dedup then (rightly) never
    # inserted them again: the rollup came up short after a crash (26,451 of 30,000 in
    # tests/integration/test_tracking_recovery.py). A plain view cannot drift from its
    # source; it aggregates at read time (a cost for issue 8 to measure).
    "DROP VIEW IF EXISTS tracking_minute_mv",
    """
    CREATE VIEW IF NOT EXISTS tracking_minute AS
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
    ORDER BY (system_id, received_at, message_id)
    """,
)

COLUMNS = (
    "event_id", "partner_id", "system_id", "type", "event", "message_id", "user_id",
    "anonymous_id", "distinct_id", "group_id", "previous_id", "category", "timestamp",
    "original_timestamp", "received_at", "properties", "traits", "context", "schema_valid",
    "structure_version", "topic", "partition", "offset",
)  # fmt: skip

REJECTION_COLUMNS = (
    "system_id", "partner_id", "event", "message_id", "reasons", "payload", "received_at",
    "topic", "partition", "offset",
)  # fmt: skip

STORED_IDS_SQL = """
    SELECT DISTINCT event_id FROM tracking_events
    WHERE system_id IN {systems:Array(String)}
      AND event_id IN {ids:Array(UUID)}
      AND received_at >= {since:DateTime64(3, 'UTC')}
"""


def row(env: Envelope, topic: str, partition: int, offset: int) -> list[Any]:
    """One ``tracking_events`` row (``COLUMNS`` order) of a decoded, upcast event."""
    d = env.data
    return [
        env.event_id, d["partner_id"], d["system_id"], d["type"], d["event"], d["message_id"],
        d["user_id"], d["anonymous_id"], d["user_id"] or d["anonymous_id"] or "",
        d["group_id"], d["previous_id"], d["category"], d["timestamp"],
        d["original_timestamp"], d["received_at"], d["properties"], d["traits"], d["context"],
        int(bool(d["schema_valid"])), d["structure_version"], topic, partition, offset,
    ]  # fmt: skip


async def retire_minute_table(clickhouse: ClickHouse) -> None:
    """Drop a ``tracking_minute`` made as a table by an earlier release (the view of the
    DDL above takes its name); a no-op once it is the view. Rows are not lost: the view
    reads them from ``tracking_events``."""
    rows = await clickhouse.query(
        "SELECT engine FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'tracking_minute'"
    )
    if rows and rows[0]["engine"] != "View":
        await clickhouse.command("DROP VIEW IF EXISTS tracking_minute_mv")
        await clickhouse.command("DROP TABLE tracking_minute")
