"""The tracking sinks: ``tracking.events`` -> ``tracking_events`` (``TrackingSink``) and
``tracking.dlq`` -> ``tracking_rejections`` (``RejectionSink``), both read models on the
projection runner (rebuildable, versioned tables).

"Recorded once" is the sink's job, not the edge's or validation's
(``pipeline/edge/validation.py``): the event id is uuid5(system, message id), so an SDK
retry, a replay after a crash and the same event recorded at the edge and by validation
are the same event, and the sink inserts an event id only if it is not stored yet. A
dedup mark kept beside validation could reach its changelog before the event it stands
for reached Kafka, and a crash between the two would lose the event (measured: 2 of
30,000 lost that way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import orjson
import structlog

from connectors import metrics
from connectors.batch import PartitionsLost, Record, still_member
from connectors.clickhouse import ClickHouse, refusal
from connectors.kafka import AsyncProducer, Deliveries
from pipeline.common import topics
from pipeline.common.deadletter import DeadLetters
from pipeline.common.failures import until_stored
from pipeline.domain import jsontext
from pipeline.domain.tracking import (
    time_range_problem,
)
from pipeline.projections.projection import Context, Decoded, Failed, Handler, Projection, Store
from pipeline.projections.runner import Deps
from pipeline.projections.tracking import tables as tracking_tables
from pipeline.projections.tracking.staging import Staging, undecoded
from schemas.codec import AvroCodec
from schemas.exceptions import DecodeError

log = structlog.get_logger(__name__)


TRACKING_DLQ = DeadLetters(topics.TRACKING_DLQ, agent="tracking")
"""Tracking's dead letters: queued into the batch (``DeadLetters.queue``)."""


class TrackingSink:
    """``tracking.events`` -> ``tracking_events``, each event id at most once, and never
    stuck on a batch the store refuses.

    A batch of newest-version events goes the staged way (``_staged``: ClickHouse decodes
    and checks it, same rules); any other batch, and one the staged way cannot take, goes
    row by row in Python, as follows.

    Commit order for one batch (row by row):
    1. Decode; keep the first record of each event id (a batch may hold an SDK retry).
       Undecodable records and events whose times the store does not hold
       (``time_range_problem``: records from before the API checked them) go to
       ``tracking.dlq`` with the reason.
    2. Ask ClickHouse which of those ids it already stores, received within the dedup
       window (``tracking_events`` has a bloom-filter index on event_id); drop them. This
       covers SDK retries, replays of validation, and batches re-delivered after a crash
       of this sink, because the check reads the same table the insert writes.
    3. Insert the rest in chunks of at most ``MAX_PARTITIONS_PER_INSERT`` months
       (``insert_chunks``: ClickHouse refuses more than 100 partitions in one insert,
       code 252), each with an ``insert_deduplication_token`` of its event ids: a second
       writer of the same chunk (a member dropped from the group after a stall, whose
       successor re-read the batch) is dropped by ClickHouse. A failure ``refusal``
       classifies as transient (connection, timeout, memory, ...) is retried with capped
       backoff (``until_stored``); a refusal of the rows themselves (type, overflow,
       partition count) halves the chunk until the refused rows are found alone, and
       those are dead-lettered with the reason while the rest is stored. Before each
       attempt the sink checks it is still a member of its group
       (``connectors.batch.still_member``): one dropped while it retried gives the batch
       up (its successor re-reads it, perhaps cut differently, which tokens would not
       catch).
    4. Return once every dead letter is acked: the batch consumer
       (``connectors/batch.py``) commits the offsets.
    """

    def __init__(
        self,
        clickhouse: ClickHouse,
        producer: AsyncProducer,
        codec: AvroCodec,
        *,
        dedup_window_s: int,
        core: ModuleType | None = None,
    ) -> None:
        self.clickhouse = clickhouse
        self.producer = producer
        self.codec = codec
        self.window = timedelta(seconds=dedup_window_s)
        self._staging = Staging(clickhouse, codec, core)
        self._check_sql = tracking_tables.staged_sql(self._staging.table)
        self.table = "tracking_events"

    async def run_batch(self, records: Sequence[Record], table: str = "tracking_events") -> None:
        """Store ``records`` into ``table``: the live ``tracking_events``, or the table of
        a version being rebuilt (``pipeline.projections.catalog.physical``), whose dedup
        reads that table too."""
        self.table = table
        if records and await self._staged(records):
            return
        await self._row_by_row(records)

    async def _staged(self, records: Sequence[Record]) -> bool:
        """The fast path: True once the batch is stored, False when it needs the row path
        (``_row_by_row``), nothing stored by this call then but perhaps some rows, which
        the row path's stored-ids check skips.

        ClickHouse reads the records itself: their Avro bodies, joined into one container
        file with their positions (``schemas/container.py``), go into a temporary table of
        this connection's session; one query checks them against the row path's rules
        (``tracking_tables.staged_sql``) and one ``INSERT ... SELECT`` stores the first of
        each event id not stored yet, with the batch's ids as its deduplication token.
        Measured on chdb 26.9: ~2 µs a record against ~40 µs decoding, building and
        inserting rows in Python. Taken only when every record is a newest-version
        TrackingEventRecorded; any error gives the batch to the row path, which tells a
        refused record from a store outage and dead-letters or retries accordingly.

        Raises ``PartitionsLost`` when this consumer left its group before the insert.
        """
        if not self._staging.fits(records):
            return False
        insert_sql = tracking_tables.staged_insert_sql(self._staging.table, self.table)
        try:
            await self._staging.load(records)
            (staged,) = await self.clickhouse.query(self._check_sql)
            if staged["unfit"] or staged["months"] > tracking_tables.MAX_PARTITIONS_PER_INSERT:
                log.info("batch takes the row path", records=len(records),
                         unfit=staged["unfit"], months=staged["months"])  # fmt: skip
                return False
            if not still_member():
                raise PartitionsLost("dropped from the group before inserting")
            await self.clickhouse.insert_select(
                self.table,
                insert_sql,
                {"window_s": int(self.window.total_seconds())},
                dedup_token=tracking_tables.token_of(staged["ids_digest"]),
            )
            metrics.INSERT_ROWS.labels("tracking_events").inc(staged["events"])
            return True
        except PartitionsLost:
            raise
        except Exception as exc:  # the row path tells a refused record from an outage
            log.warning("staged insert failed; the batch takes the row path",
                        records=len(records), error=repr(exc)[:300])  # fmt: skip
            return False

    async def _row_by_row(self, records: Sequence[Record]) -> None:
        """Decode every record in Python and insert rows (the steps in the class docstring)."""
        rows: dict[str, list[Any]] = {}
        sources: dict[str, Record] = {}
        out = self.producer.deliveries()
        for r in records:
            try:
                envelope = self.codec.decode(r.value or b"")
                row = tracking_tables.row(envelope, r.topic, r.partition, r.offset)
            except (DecodeError, KeyError) as exc:
                TRACKING_DLQ.queue(out, r, f"undecodable tracking event: {exc}")
                continue
            out_of_range = time_range_problem(*tracking_tables.times(row))
            if out_of_range is not None:
                _dead_row(out, r, row, out_of_range)
                continue
            if envelope.event_id not in rows:
                rows[envelope.event_id] = row
                sources[envelope.event_id] = r
        if rows:
            stored = await self._stored(rows)
            fresh = [row for event_id, row in rows.items() if event_id not in stored]
            for chunk in tracking_tables.insert_chunks(fresh):
                for row, reason in await self._insert(chunk):
                    why = f"refused by ClickHouse: {reason}"
                    _dead_row(out, sources[str(row[0])], row, why)
        await out.wait()

    async def _stored(self, rows: dict[str, list[Any]]) -> set[str]:
        """The ids of ``rows`` already stored, received within the dedup window."""
        stored: set[str] = set()
        received = [tracking_tables.times(r)[2] for r in rows.values()]
        params = {
            "systems": sorted(
                {r[tracking_tables.COLUMNS.index("system_id")] for r in rows.values()}
            ),
            "ids": list(rows),
            "since": min(received) - self.window,
        }

        async def read() -> None:
            found = await self.clickhouse.query(tracking_tables.stored_ids_sql(self.table), params)
            stored.update(str(r["event_id"]) for r in found)

        await until_stored("tracking ids", read)
        return stored

    async def _insert(self, rows: list[Any]) -> list[tuple[list[Any], str]]:
        return await store_rows(
            self.clickhouse, self.table, rows, tracking_tables.COLUMNS,
            token=tracking_tables.dedup_token,
        )  # fmt: skip


async def store_rows(
    clickhouse: ClickHouse,
    table: str,
    rows: list[Any],
    columns: Sequence[str],
    *,
    token: Callable[[list[Any]], str] | None = None,
) -> list[tuple[list[Any], str]]:
    """Insert ``rows`` into ``table`` (``token(rows)`` as the insert's deduplication token),
    retrying transient failures with capped backoff until ClickHouse takes them
    (``until_stored``). Returns the rows ClickHouse refuses for what they hold
    (``connectors.clickhouse.refusal``), each with the reason: a refused insert is halved
    (deterministically) until the refused rows stand alone, and the rest is stored.

    Raises:
        PartitionsLost: this consumer was dropped from its group before an attempt
            (``still_member``); rows of earlier attempts may be stored.
    """
    refused: str | None = None
    fenced = False

    async def attempt() -> None:
        nonlocal refused, fenced
        if not still_member():
            fenced = True  # stop retrying; raised below, past until_stored's retries
            return
        try:
            await clickhouse.insert(
                table, rows, columns, dedup_token=token(rows) if token else None
            )
        except Exception as exc:
            refused = refusal(exc)
            if refused is None:
                raise  # transient: until_stored retries with capped backoff

    await until_stored(table, attempt)
    if fenced:
        raise PartitionsLost("dropped from the group before inserting")
    if refused is None:
        return []
    if len(rows) == 1:
        return [(rows[0], refused)]
    log.warning("insert refused, halving to find the rows", table=table, rows=len(rows),
                reason=refused)  # fmt: skip
    half = len(rows) // 2
    return [
        *await store_rows(clickhouse, table, rows[:half], columns, token=token),
        *await store_rows(clickhouse, table, rows[half:], columns, token=token),
    ]


def _dead_row(out: Deliveries, record: Record, row: Sequence[Any], reason: str) -> None:
    """Dead-letter one decoded event with ``reason``, as validation does (a JSON body with
    the reasons, system, partner and the event), so ``tracking_rejections`` lists it under
    its system."""
    event = {
        column: value.isoformat() if isinstance(value, datetime) else value
        for column, value in zip(tracking_tables.COLUMNS, row, strict=True)
    }
    body = {
        "reasons": [reason],
        "system_id": event["system_id"],
        "partner_id": event["partner_id"],
        "event": event,
    }
    TRACKING_DLQ.queue(out, record, reason, value=orjson.dumps(body, default=str))


class RejectionSink:
    """``tracking.dlq`` -> ``tracking_rejections`` (ReplacingMergeTree on the source
    position: a replay of the dead-letter topic stores each rejection once).

    Text is stored as valid UTF-8 (a lone surrogate, which JSON allows and a rejected
    event may carry, becomes "?"). A row ClickHouse still refuses is logged and skipped:
    it stays readable in ``tracking.dlq`` for the topic's retention; retrying it stalled
    the rejections for every partner."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse

    async def run_batch(
        self, records: Sequence[Record], table: str = "tracking_rejections"
    ) -> None:
        """Store ``records`` into ``table`` (the live table, or a rebuild's)."""
        rows = []
        for msg in records:
            try:
                body = jsontext.loads(msg.value or b"")  # escaped surrogates too
                raw = body["event"]
                received = datetime.fromisoformat(raw["received_at"])
                reasons = [str(r) for r in body["reasons"]]
                system_id, partner_id = str(body["system_id"]), str(body["partner_id"])
                name, message_id = str(raw.get("event", "")), str(raw.get("message_id", ""))
            except (ValueError, KeyError, TypeError, AttributeError):
                # poison records also land here (headers say why); keep what is known
                headers = {k: v.decode(errors="replace") for k, v in msg.headers}
                received = datetime.now(UTC)
                reasons = [headers.get("reason", "undecodable record")]
                system_id = (msg.key or b"").decode(errors="replace")
                partner_id, name, message_id = "", "", ""
            rows.append(
                [_utf8(system_id), _utf8(partner_id), _utf8(name), _utf8(message_id),
                 [_utf8(r) for r in reasons],
                 (msg.value or b"").decode(errors="replace")[:65536], received,
                 msg.topic, msg.partition, msg.offset]
            )  # fmt: skip
        if rows:
            refused = await store_rows(
                self.clickhouse, table, rows, tracking_tables.REJECTION_COLUMNS
            )
            for row, reason in refused:
                log.error("rejection not stored, left in the dead-letter topic", reason=reason,
                          topic=row[-3], partition=row[-2], offset=row[-1])  # fmt: skip


def _utf8(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) replaced by "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


# ---------------------------------------------------------------- on the projection runner
# Both sinks run as projections (checkpoints, the catalog, `projections list`), on the
# groups they had before the runner; they decode records themselves (the tracking sink
# lets ClickHouse decode a whole batch), so the runner hands them the bytes (``undecoded``).


def _over_records(
    run_batch: Callable[[Sequence[Record], str], Awaitable[None]], table: str
) -> Handler:
    """A handler that gives a sink the batch's records as consumed, and the physical name
    of ``table`` in the version it runs (live, or a rebuild beside it)."""

    async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
        await run_batch([d.record for d in batch], ctx.tables[table])
        return ()

    return handle


def _bind_sink(deps: Deps) -> Handler:
    if deps.staging is None or deps.producer is None:
        raise ValueError("the tracking sink needs Deps.staging and .producer")
    sink = TrackingSink(deps.staging, deps.producer, deps.codec,
                        dedup_window_s=deps.dedup_window_s, core=deps.core)  # fmt: skip
    return _over_records(sink.run_batch, "tracking_events")


def _bind_rejections(deps: Deps) -> Handler:
    return _over_records(RejectionSink(deps.clickhouse).run_batch, "tracking_rejections")


SINK = Projection(
    name="tracking_events",
    topics=(topics.TRACKING_EVENTS,),
    store=Store.CLICKHOUSE,
    handle=None,
    bind=_bind_sink,
    decode=undecoded,
    tables=("tracking_events",),
    ddl=tracking_tables.events_ddl,
    analyst_tables=("tracking_events", "tracking_minute"),
    legacy_group="tracking-sink",
    description="recorded tracking events (and the per-minute view), each event id once",
)
REJECTIONS = Projection(
    name="tracking_rejections",
    topics=(topics.TRACKING_DLQ,),
    store=Store.CLICKHOUSE,
    handle=None,
    bind=_bind_rejections,
    decode=undecoded,
    tables=("tracking_rejections",),
    ddl=tracking_tables.rejections_ddl,
    analyst_tables=("tracking_rejections",),
    legacy_group="tracking-rejections",
    description="events that failed validation, with the reasons",
)
