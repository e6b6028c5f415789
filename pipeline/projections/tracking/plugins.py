"""Projections of recorded tracking events whose work ClickHouse does (issue 21: plugins off
the hot path). Tracking is the volume: a projection that decoded every event of
``tracking.events`` in Python beside the sink tripled ingest -> queryable p99.

Declared with :func:`over_recorded_events`, a projection gives SQL instead of a Python
handler: for each batch of ``tracking.events`` it consumes, the records are staged in
ClickHouse (``staging.py``: ClickHouse decodes the Avro itself) and the projection's
``INSERT ... SELECT`` runs over them, as rows with ``tracking_events``' columns
(``tables.stored_rows_sql``). So it keeps its own consumer group, checkpoints, versions,
rebuilds and promotions like any read model, and its per-event cost is ClickHouse's.
Records of an older schema version (an install's oldest history) go to its Python
``fallback``, through the codec's upcasting. The rows a batch gives it are all of the
batch's events, before the sink's deduplication: its tables must make a repeated event
harmless (a ReplacingMergeTree on the event id, read with FINAL), as any projection's must.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

from connectors.clickhouse import ClickHouse
from pipeline.common import topics
from pipeline.projections.projection import Context, Decoded, Failed, Handler, Projection, Store
from pipeline.projections.runner import Deps
from pipeline.projections.tracking.staging import Staging, undecoded
from pipeline.projections.tracking.tables import stored_rows_sql
from schemas.exceptions import DecodeError

__all__ = ["RowsSql", "over_recorded_events"]

RowsSql = Callable[[Mapping[str, str], str], str]
"""(the version's tables: declared name -> physical name, the rows: a parenthesised
subquery with ``tracking_events``' columns) -> the ``INSERT ... SELECT`` to run."""


def over_recorded_events(
    *,
    name: str,
    tables: tuple[str, ...],
    ddl: Callable[[Mapping[str, str]], Sequence[str]],
    insert: RowsSql,
    fallback: Handler,
    analyst_tables: tuple[str, ...] = (),
    description: str = "",
) -> Projection:
    """A projection of ``tracking.events`` that runs ``insert`` on each batch's rows (see
    the module docstring); ``fallback`` handles a batch holding records the staging table
    cannot read (an older schema version), decoded and upcast. ``tables``, ``ddl``,
    ``analyst_tables`` and ``description`` as for any ``Projection``."""

    def bind(deps: Deps) -> Handler:
        staging: Staging | None = None

        async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
            nonlocal staging
            records = [d.record for d in batch]
            if staging is None:
                # a session of its own: the sink's is busy with the sink's batches, and a
                # server refuses two queries at once in one session
                client = await asyncio.to_thread(ClickHouse.open, deps.clickhouse.dsn, session=True)
                staging = Staging(client, deps.codec, deps.core)
            if staging.fits(records):
                await staging.load(records)
                rows = f"({stored_rows_sql(staging.table)})"
                await staging.clickhouse.command(insert(ctx.tables, rows))
                return ()
            return await _with_fallback(fallback, batch, ctx, deps)

        return handle

    return Projection(
        name=name,
        topics=(topics.TRACKING_EVENTS,),
        store=Store.CLICKHOUSE,
        handle=None,
        bind=bind,
        decode=undecoded,
        tables=tables,
        ddl=ddl,
        analyst_tables=analyst_tables,
        description=description,
    )


async def _with_fallback(
    fallback: Handler, batch: Sequence[Decoded], ctx: Context, deps: Deps
) -> Failed:
    """``fallback`` on the batch's records decoded by the codec (upcast to the newest
    version); a record that does not decode is failed with the reason (dead-lettered)."""
    decoded: list[Decoded] = []
    failed: list[tuple[Decoded, str]] = []
    for d in batch:
        try:
            envelope = deps.codec.decode(d.record.value or b"")
        except DecodeError as exc:
            failed.append((d, f"undecodable tracking event: {exc}"))
            continue
        decoded.append(Decoded(envelope, d.topic, d.partition, d.offset, d.record))
    return [*failed, *await fallback(decoded, ctx)]
