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
agree. Two writers can both pass that check with one batch (a member dropped from its group
after a stall still inserts what its successor inserts): each insert carries an
``insert_deduplication_token`` made of its event ids (:func:`dedup_token`), and the table
keeps the tokens of its last ``DEDUP_WINDOW_BLOCKS`` blocks, so the second insert of the same
rows is dropped by ClickHouse itself (checked on chdb 26.9: a repeated token is dropped,
multi-partition blocks included; without the table setting it is ignored).

An insert covers at most ``MAX_PARTITIONS_PER_INSERT`` months (:func:`insert_chunks`):
ClickHouse refuses a block spanning more than ``max_partitions_per_insert_block`` (100)
partitions with code 252, and a batch of events from many months (a backfill) stalled the
sink on that before.

``tracking_rejections`` is a ReplacingMergeTree on (system, received_at, message id, and
the dead letter's partition and offset): a replayed dead letter collapses under FINAL, and
two refusals of one request stay two even without message ids (the edge refuses events
whose id is what is wrong with them). Tables made before the position was in the key
collapsed those: rebuild and promote ``tracking_rejections`` to get the new key.

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

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from connectors.clickhouse import ClickHouse
from pipeline.domain.tracking import (
    EARLIEST_CLIENT_TIME,
    EARLIEST_TIMESTAMP,
    LATEST_CLIENT_TIME,
    MAX_FUTURE_SKEW,
)
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from connectors.store import QueryStore

MAX_PARTITIONS_PER_INSERT = 50
"""Months (``tracking_events`` partitions) one INSERT may span. ClickHouse refuses a block
over ``max_partitions_per_insert_block`` (default 100) with TOO_MANY_PARTS (code 252);
half of it leaves room for a server configured lower and keeps the parts one insert
creates (one per partition) few."""

DEDUP_WINDOW_BLOCKS = 10_000
"""``non_replicated_deduplication_window`` of ``tracking_events``: how many recent inserted
blocks (parts) ClickHouse remembers the tokens of. The sink inserts about two batches a
second at most, one part per month in each: 10,000 blocks cover far more than
``max.poll.interval.ms`` (300 s), the stall after which a zombie's insert can race its
successor's. Cost: one line per block in the table's deduplication log."""

_EVENTS_TABLE = (
    """
    CREATE TABLE IF NOT EXISTS {t} (
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
        traits String DEFAULT '{{}}',
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
    """
    f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}"
)
_MINUTE_VIEW = """
    CREATE VIEW IF NOT EXISTS tracking_minute AS
    SELECT system_id, event, toStartOfMinute(timestamp) AS minute,
           count() AS events, uniqState(distinct_id) AS users
    FROM tracking_events
    GROUP BY system_id, event, minute
    """
_REJECTIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS {t} (
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
    ORDER BY (system_id, received_at, message_id, partition, offset)
    """


def events_ddl(tables: Mapping[str, str]) -> list[str]:
    """The statements that make one version of ``tracking_events`` (``tables``: declared
    name -> physical name; ``pipeline.projections.catalog.physical``), and the per-minute
    view, which reads the live table by its name (a promotion exchanges the tables under
    it)."""
    t = tables["tracking_events"]
    return [
        _EVENTS_TABLE.format(t=t),
        # tables made before insert deduplication tokens (a no-op when already set)
        f"ALTER TABLE {t} MODIFY SETTING non_replicated_deduplication_window = "
        f"{DEDUP_WINDOW_BLOCKS}",
        # tables made before Segment call types (their old rows read as track calls whose
        # client time is their timestamp)
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS type LowCardinality(String) "
        "DEFAULT 'track' AFTER system_id",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS group_id Nullable(String) AFTER distinct_id",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS previous_id Nullable(String) AFTER group_id",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS category Nullable(String) AFTER previous_id",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS original_timestamp "
        "DateTime64(3, 'UTC') DEFAULT timestamp AFTER timestamp",
        f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS traits String DEFAULT '{{}}' AFTER properties",
        # The per-minute rollup was an AggregatingMergeTree fed by a materialized view. A
        # SIGKILL between ClickHouse committing an insert's part and its view's part left
        # rows in tracking_events and not in the rollup, and the sink's dedup then (rightly)
        # never inserted them again: the rollup came up short after a crash (26,451 of
        # 30,000 in tests/integration/test_tracking_recovery.py). A plain view cannot drift
        # from its source; it aggregates at read time.
        "DROP VIEW IF EXISTS tracking_minute_mv",
        _MINUTE_VIEW,
    ]


def rejections_ddl(tables: Mapping[str, str]) -> list[str]:
    """The statement that makes one version of ``tracking_rejections``."""
    return [_REJECTIONS_TABLE.format(t=tables["tracking_rejections"])]


DDL = (
    *events_ddl({"tracking_events": "tracking_events"}),
    *rejections_ddl({"tracking_rejections": "tracking_rejections"}),
)
"""The live tables (``pipeline.projections.ensure_tables`` makes them at start)."""

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


def stored_ids_sql(table: str) -> str:
    """The ids of a batch already in ``table`` (a version of ``tracking_events``), received
    within the dedup window (parameters ``systems``, ``ids``, ``since``)."""
    return f"""
        SELECT DISTINCT event_id FROM {table}
        WHERE system_id IN {{systems:Array(String)}}
          AND event_id IN {{ids:Array(UUID)}}
          AND received_at >= {{since:DateTime64(3, 'UTC')}}
    """


# ------------------------------------------------------- the staged (Avro) way in
#
# The sink's fast path (``pipeline/projections/tracking/sink.py``): a batch of TrackingEventRecorded
# payloads of the newest version goes into ClickHouse as one Avro container file
# (``schemas/container.py``), read by ClickHouse into a temporary table of the sink's
# session; SQL then checks it and moves it into ``tracking_events``, with the same rules as
# the row path below (:func:`row`, ``time_range_problem``, the stored-ids check).


def staging_ddl(table: str) -> str:
    """A temporary table ``table`` (session-scoped) for staged batches. Times stay Avro's
    microseconds (Int64) until checked: ClickHouse wraps an out-of-range value into a
    wrong date rather than refuse it."""
    return f"""
        CREATE TEMPORARY TABLE IF NOT EXISTS {table} (
            event_id UUID,
            `data.partner_id` String,
            `data.system_id` String,
            `data.type` String,
            `data.event` String,
            `data.message_id` String,
            `data.user_id` Nullable(String),
            `data.anonymous_id` Nullable(String),
            `data.group_id` Nullable(String),
            `data.previous_id` Nullable(String),
            `data.category` Nullable(String),
            `data.timestamp` Int64,
            `data.original_timestamp` Int64,
            `data.received_at` Int64,
            `data.properties` String,
            `data.traits` String,
            `data.context` String,
            `data.schema_valid` Bool,
            `data.structure_version` Nullable(Int32),
            kafka_topic String,
            kafka_partition UInt32,
            kafka_offset UInt64
        ) ENGINE = Memory
    """


STAGING_COLUMNS = (
    "event_id", "data.partner_id", "data.system_id", "data.type", "data.event",
    "data.message_id", "data.user_id", "data.anonymous_id", "data.group_id",
    "data.previous_id", "data.category", "data.timestamp", "data.original_timestamp",
    "data.received_at", "data.properties", "data.traits", "data.context", "data.schema_valid",
    "data.structure_version", "kafka_topic", "kafka_partition", "kafka_offset",
)  # fmt: skip
"""The staging table's columns; Avro's reader fills them by field name (``data.x``: field
``x`` of the record ``data``; ``kafka_*``: ``schemas.container.POSITION_FIELDS``)."""


def _micros(t: datetime) -> int:
    return (t - EARLIEST_TIMESTAMP) // timedelta(microseconds=1)


def staged_sql(table: str) -> str:
    """One row about the batch staged in ``table``: ``unfit`` counts the rows the row path
    would refuse or not store as they are (``time_range_problem``'s bounds, made from the
    same constants; a negative structure version, which ``UInt32`` would wrap), ``months``
    the partitions an insert would span, ``events`` its distinct event ids, ``ids_digest``
    the SHA-256 of its sorted distinct event ids (as :func:`dedup_token` makes it). A
    batch with unfit rows or more than ``MAX_PARTITIONS_PER_INSERT`` months takes the row
    path, which dead-letters and chunks."""
    skew_us = MAX_FUTURE_SKEW // timedelta(microseconds=1)
    return f"""
        SELECT
            countIf(NOT (`data.timestamp` BETWEEN {_micros(EARLIEST_TIMESTAMP)}
                         AND `data.received_at` + {skew_us})
                    OR NOT (`data.original_timestamp` BETWEEN {_micros(EARLIEST_CLIENT_TIME)}
                            AND {_micros(LATEST_CLIENT_TIME)})
                    OR ifNull(`data.structure_version`, 0) < 0) AS unfit,
            uniqExact(toYYYYMM(fromUnixTimestamp64Micro(`data.timestamp`, 'UTC'))) AS months,
            uniqExact(event_id) AS events,
            lower(hex(SHA256(arrayStringConcat(
                arraySort(groupUniqArray(toString(event_id))), char(10))))) AS ids_digest
        FROM {table}
    """


def _millis(column: str) -> str:
    # floor to ms, as the row path's datetime does (intDiv truncates towards zero: -1.5 ms
    # would become -1 ms, a pre-1970 client time 1 ms later than the row path stores it)
    return f"fromUnixTimestamp64Milli(intDiv({column}, 1000) - ({column} % 1000 < 0), 'UTC')"


def stored_rows_sql(table: str) -> str:
    """The rows of the batch staged in ``table`` as ``tracking_events`` stores them, every
    column (``COLUMNS``) as :func:`row` makes it: what the sink inserts, and what a plugin
    over recorded events reads (``pipeline/projections/tracking/plugins.py``)."""
    return f"""
        SELECT
            event_id, `data.partner_id` AS partner_id, `data.system_id` AS system_id,
            `data.type` AS type, `data.event` AS event, `data.message_id` AS message_id,
            `data.user_id` AS user_id, `data.anonymous_id` AS anonymous_id,
            coalesce(nullIf(`data.user_id`, ''), nullIf(`data.anonymous_id`, ''), '')
                AS distinct_id,
            `data.group_id` AS group_id, `data.previous_id` AS previous_id,
            `data.category` AS category,
            {_millis("`data.timestamp`")} AS timestamp,
            {_millis("`data.original_timestamp`")} AS original_timestamp,
            {_millis("`data.received_at`")} AS received_at,
            `data.properties` AS properties, `data.traits` AS traits, `data.context` AS context,
            toUInt8(`data.schema_valid`) AS schema_valid,
            `data.structure_version` AS structure_version,
            kafka_topic AS topic, kafka_partition AS partition, kafka_offset AS offset
        FROM {table}
    """


def staged_insert_sql(table: str, target: str = "tracking_events") -> str:
    """The batch staged in ``table`` into ``target`` (a version of ``tracking_events``;
    parameter ``window_s``: the dedup window, s): the first record of each event id
    (lowest offset: one id has one key, so one partition) unless stored within the window
    (:func:`stored_ids_sql`'s rule), each column as :func:`stored_rows_sql` makes it. Only
    for a batch :func:`staged_sql` found fit."""
    return f"""
        INSERT INTO {target} ({", ".join(COLUMNS)})
        SELECT {", ".join(COLUMNS)} FROM ({stored_rows_sql(table)})
        WHERE event_id NOT IN (
            SELECT event_id FROM {target}
            WHERE system_id IN (SELECT `data.system_id` FROM {table})
              AND event_id IN (SELECT event_id FROM {table})
              AND received_at >= (
                  SELECT {_millis("min(`data.received_at`)")} FROM {table}
              ) - INTERVAL {{window_s:UInt32}} SECOND
        )
        ORDER BY partition, offset
        LIMIT 1 BY event_id
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


_EVENT_ID = COLUMNS.index("event_id")
_TIMESTAMP = COLUMNS.index("timestamp")
_ORIGINAL_TIMESTAMP = COLUMNS.index("original_timestamp")
_RECEIVED_AT = COLUMNS.index("received_at")


def times(r: Sequence[Any]) -> tuple[datetime, datetime, datetime]:
    """(timestamp, original_timestamp, received_at) of a ``tracking_events`` row."""
    timestamp = r[_TIMESTAMP]
    return timestamp, r[_ORIGINAL_TIMESTAMP] or timestamp, r[_RECEIVED_AT]


def insert_chunks(
    rows: Sequence[Sequence[Any]], max_partitions: int = MAX_PARTITIONS_PER_INSERT
) -> list[list[Sequence[Any]]]:
    """``rows`` split into INSERTs of at most ``max_partitions`` months each (the table's
    ``toYYYYMM(timestamp)`` partitions, UTC).

    Deterministic: months ascending, grouped ``max_partitions`` at a time; rows ordered by
    event id within a chunk. The same rows give the same chunks in any order, so two
    writers of one batch send identical inserts with identical tokens (:func:`dedup_token`).
    """
    months: dict[tuple[int, int], list[Sequence[Any]]] = {}
    for r in rows:
        t = r[_TIMESTAMP]
        months.setdefault((t.year, t.month), []).append(r)
    ordered = sorted(months)
    chunks = []
    for start in range(0, len(ordered), max_partitions):
        chunk = [r for month in ordered[start : start + max_partitions] for r in months[month]]
        chunks.append(sorted(chunk, key=lambda r: str(r[_EVENT_ID])))
    return chunks


def dedup_token(rows: Sequence[Sequence[Any]]) -> str:
    """The ``insert_deduplication_token`` of one INSERT of ``rows``: SHA-256 of their
    sorted event ids. Equal sets of events, equal tokens; a row is stored under one event
    id only, so a repeated token always means the same rows."""
    ids = sorted(str(r[_EVENT_ID]) for r in rows)
    return token_of(hashlib.sha256("\n".join(ids).encode()).hexdigest())


def token_of(ids_digest: str) -> str:
    """The insert token for the SHA-256 hex digest of sorted event ids."""
    return "tracking_events:" + ids_digest


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


# ------------------------------------------------------------ reads (what the API asks)
REJECTIONS_WHERE = "system_id = {system:String} AND partner_id = {partner:String}"


async def system_rejections(
    store: QueryStore, partner_id: str, system_id: str, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One system's rejected events, newest first, at most ``limit``: each ``{"event",
    "message_id", "reasons", "received_at", "properties"}`` (the event's properties as
    sent, None if it had none), and how many there are in all."""
    params = {"system": system_id, "partner": partner_id, "limit": limit}
    rows = await store.query(
        "SELECT event, message_id, reasons, received_at, payload FROM tracking_rejections "
        f"FINAL WHERE {REJECTIONS_WHERE} ORDER BY received_at DESC, offset DESC "
        "LIMIT {limit:UInt32}",
        params,
    )
    total = await store.query(
        f"SELECT count() AS n FROM tracking_rejections FINAL WHERE {REJECTIONS_WHERE}", params
    )
    items = []
    for r in rows:
        payload = orjson.loads(r.pop("payload") or "{}")
        items.append({**r, "properties": payload.get("event", {}).get("properties")})
    return items, int(total[0]["n"])
