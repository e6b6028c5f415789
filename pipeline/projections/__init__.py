"""Read models: table definitions and the pure row-building of each projection."""

from __future__ import annotations

from connectors.clickhouse import ClickHouse
from pipeline.projections import catalog, event_log, users
from pipeline.projections.tracking import tables as tracking

ALL_DDL = (*catalog.DDL, *users.DDL, *event_log.DDL, *tracking.DDL)


async def migrate(clickhouse: ClickHouse) -> None:
    """Create every read-model table that is missing (idempotent, every start): the
    live tables of the built-in projections (the runner also creates them, and those of
    plugins and of rebuilds), the catalog, and the tracking tables."""
    await tracking.retire_minute_table(clickhouse)
    for ddl in ALL_DDL:
        await clickhouse.command(ddl)
