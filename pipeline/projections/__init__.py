"""Read models: table definitions and the pure row-building of each projection."""

from __future__ import annotations

from connectors.clickhouse import ClickHouse
from pipeline.projections import event_log, tracking, users

ALL_DDL = (*users.DDL, *event_log.DDL, *tracking.DDL)


async def migrate(clickhouse: ClickHouse) -> None:
    """Create every read-model table that is missing (idempotent, every start)."""
    await tracking.retire_minute_table(clickhouse)
    for ddl in ALL_DDL:
        await clickhouse.command(ddl)
