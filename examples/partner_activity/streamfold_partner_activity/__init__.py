"""Daily active users and events per partner system, from ``tracking.events``.

A projection plugin: nothing in streamfold's core names it. Installed beside streamfold,
its entry point (``streamfold.projections``, in this package's ``pyproject.toml``) makes
the runner build it from the topic's history on its next start and keep it live; then
``streamfold projections rebuild partner_activity`` rebuilds it like any read model.

Read it with ``streamfold sql``::

    SELECT day, system_id, daily_active_users, events
    FROM partner_daily_activity ORDER BY day DESC LIMIT 10

What it keeps: one row per recorded event in ``partner_daily_events`` (ReplacingMergeTree
on the event id, so a record applied twice counts once under ``FINAL``), and the view
``partner_daily_activity`` that counts them. A user is its ``user_id``, else its
``anonymous_id``; the day is the event's (skew-corrected) time in UTC.

Its work is ClickHouse's (``pipeline/projections/tracking/plugins.py``): each batch of
``tracking.events`` is staged in ClickHouse and :func:`insert` runs over its rows, so no
event is decoded in Python beside the sink. :func:`row` is the same rule in Python, for
records of an older schema version (and for its tests).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.projections.projection import Context, Decoded, Failed
from pipeline.projections.tracking.plugins import over_recorded_events

TABLE = "partner_daily_events"
VIEW = "partner_daily_activity"
COLUMNS = ("day", "partner_id", "system_id", "actor", "event_id")


def ddl(tables: Mapping[str, str]) -> list[str]:
    """The event table of one version (``tables[TABLE]``) and the view readers use, which
    always reads the live version's table."""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {tables[TABLE]} (
            day Date,
            partner_id String,
            system_id String,
            actor String,
            event_id UUID
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMM(day)
        ORDER BY (partner_id, system_id, day, event_id)
        """,
        f"""
        CREATE VIEW IF NOT EXISTS {VIEW} AS
        SELECT day, partner_id, system_id,
               uniqExactIf(actor, actor != '') AS daily_active_users,
               count() AS events
        FROM {TABLE} FINAL
        GROUP BY day, partner_id, system_id
        """,
    ]


def row(data: Mapping[str, Any], event_id: Any) -> list[Any]:
    """One ``partner_daily_events`` row from a ``TrackingEventRecorded``'s data (pure)."""
    actor = data.get("user_id") or data.get("anonymous_id") or ""
    return [data["timestamp"].date(), data["partner_id"], data["system_id"], actor, event_id]


def insert(tables: Mapping[str, str], rows: str) -> str:
    """:func:`row`'s rule in SQL, over ``rows`` (``tracking_events``' columns, where
    ``distinct_id`` is the user id, else the anonymous id, else "")."""
    return (
        f"INSERT INTO {tables[TABLE]} ({', '.join(COLUMNS)}) "
        f"SELECT toDate(timestamp, 'UTC'), partner_id, system_id, distinct_id, event_id "
        f"FROM {rows}"
    )


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    """The Python path, for records the staging table cannot read (older versions)."""
    rows = [row(d.envelope.data, d.envelope.event_id) for d in batch]
    await ctx.clickhouse.insert(ctx.tables[TABLE], rows, COLUMNS)
    return []


PROJECTION = over_recorded_events(
    name="partner_activity",
    tables=(TABLE,),
    ddl=ddl,
    insert=insert,
    fallback=handle,
    analyst_tables=(VIEW, TABLE),
    description="daily active users and events per partner system",
)
