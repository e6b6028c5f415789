"""The inbox of the inbound webhook (seed 003, issue 25): CloudEvents other systems sent to
``POST /api/events/webhook``, each stored once.

The webhook puts every accepted event on ``webhook.events`` (JSON, key = the event's
id); this projection keeps them in ``inbound_events``, a ReplacingMergeTree keyed by
``(source, event_id)``: CloudEvents 1.0 makes that pair unique per event, so a sender's
retry, a second delivery or a replay of the topic collapses to one row under ``FINAL``
(the seed's inbox: "dedupe events by eventId before processing"). What arrived is
readable at ``GET /api/admin/inbound-events``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.common import topics
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store

if TYPE_CHECKING:
    from connectors.store import QueryStore

COLUMNS = (
    "event_id", "source", "type", "subject", "time", "subscription", "datacontenttype",
    "data", "received_at",
)  # fmt: skip


def ddl(tables: Mapping[str, str]) -> list[str]:
    """The statement that creates ``tables["inbound_events"]`` (IF NOT EXISTS)."""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {tables["inbound_events"]} (
            event_id String,
            source String,
            type LowCardinality(String),
            subject String,
            time DateTime64(6, 'UTC'),
            subscription LowCardinality(String),
            datacontenttype String,
            data String,
            received_at DateTime64(6, 'UTC')
        ) ENGINE = ReplacingMergeTree
        ORDER BY (source, event_id)
        """
    ]


def decode(value: bytes) -> dict[str, Any]:
    """A ``webhook.events`` record (``api/routes/webhook.py`` writes it). Raises
    ``ValueError``/``KeyError`` for anything else (the runner dead-letters it)."""
    record = orjson.loads(value)
    for field in ("id", "source", "type", "subscription", "received_at"):
        if not isinstance(record.get(field), str):
            raise KeyError(f"a webhook record needs {field}")
    return record


def row(record: Mapping[str, Any]) -> list[Any]:
    received = datetime.fromisoformat(record["received_at"])
    return [
        record["id"], record["source"], record["type"], record.get("subject") or "",
        datetime.fromisoformat(record["time"]) if record.get("time") else received,
        record["subscription"], record.get("datacontenttype") or "",
        orjson.dumps(record.get("data")).decode(), received,
    ]  # fmt: skip


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    rows = [row(d.value) for d in batch]
    await ctx.clickhouse.insert(ctx.tables["inbound_events"], rows, COLUMNS)
    return ()


LATEST_SQL = """
    SELECT event_id, source, type, subject, time, subscription, datacontenttype, data,
           received_at
    FROM inbound_events FINAL
    WHERE {source:String} = '' OR source = {source:String}
    ORDER BY received_at DESC, event_id
    LIMIT {limit:UInt32}
"""


async def latest(store: QueryStore, *, source: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` events received (of ``source``, if not empty), each once; each
    row's ``data`` parsed back from its JSON text."""
    rows = await store.query(LATEST_SQL, {"source": source, "limit": limit})
    return [{**r, "data": orjson.loads(r["data"])} for r in rows]


PROJECTION = Projection(
    name="inbound_events",
    topics=(topics.WEBHOOK_EVENTS,),
    store=Store.CLICKHOUSE,
    handle=handle,
    decode=decode,
    tables=("inbound_events",),
    ddl=ddl,
    description="CloudEvents received by the inbound webhook, each (source, id) once",
)
