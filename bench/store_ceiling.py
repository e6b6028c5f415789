"""The bare ClickHouse ceiling beside the pipeline's stored rate, on a fresh chdb directory.

Two ways of putting ``--batches`` batches of ``--rows`` TrackingEventRecorded events into
``tracking_events`` (the project's own DDL), timed on the store side only:

- ``column_insert``: rows already in Python, one column-oriented clickhouse-connect insert
  per batch (the ceiling issue 8 names: no decoding, no checks);
- ``staged``: what the tracking sink does per batch on its fast path: the Avro payloads
  joined into a container file (``schemas.container``), read by ClickHouse into the
  staging table, checked (``staged_sql``) and moved by the deduplicating ``INSERT ...
  SELECT``, against a table that grows batch by batch.

Runs in a process of its own (chdb opens one data directory per process); ``bench/ingest.py``
calls it once per run. Usage: python bench/store_ceiling.py [--rows 50000] [--batches 6]
Prints one JSON line: rows/s of each way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.batch import Record  # noqa: E402
from connectors.clickhouse import ClickHouse  # noqa: E402
from pipeline.common import compiled  # noqa: E402
from pipeline.domain.tracking import TrackedEvent, recorded_envelope  # noqa: E402
from pipeline.projections import migrate  # noqa: E402
from pipeline.projections.tracking import tables as tracking_tables  # noqa: E402
from pipeline.projections.tracking.sink import TrackingSink  # noqa: E402
from schemas.codec import AvroCodec  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

SYSTEM = "sys-store-ceiling"


def payloads(codec: AvroCodec, start: int, n: int) -> list[bytes]:
    """``n`` page views like the load generator's, as the API records them."""
    now = datetime.now(UTC)
    out = []
    for i in range(start, start + n):
        tracked = TrackedEvent(
            message_id=f"m-{i}", event="page_view", user_id=None, anonymous_id=f"a-{i % 300}",
            timestamp=now - timedelta(milliseconds=i), received_at=now,
            properties={"path": f"/p/{i % 50}", "status": 200}, context={"ip": "10.0.0.1"},
            system_id=SYSTEM, partner_id="partner",
        )  # fmt: skip
        envelope = recorded_envelope(
            tracked, producer="bench", schema_valid=True, structure_version=1
        )
        out.append(codec.encode(envelope))
    return out


async def run(args: argparse.Namespace) -> dict[str, float]:
    codec = AvroCodec(SchemaRegistry.load())
    with tempfile.TemporaryDirectory(prefix="streamfold-store-ceiling-") as tmp:
        clickhouse = ClickHouse.open(f"chdb://{Path(tmp) / 'clickhouse'}")
        try:
            await migrate(clickhouse)
            batches = [payloads(codec, b * args.rows, args.rows) for b in range(2 * args.batches)]
            column_s = 0.0
            for b, batch in enumerate(batches[: args.batches]):
                rows = [
                    tracking_tables.row(codec.decode(p), "bench", 0, b * args.rows + i)
                    for i, p in enumerate(batch)
                ]
                columns = [list(c) for c in zip(*rows, strict=True)]
                started = time.perf_counter()
                clickhouse.client.insert("tracking_events", columns, column_oriented=True,
                                         column_names=list(tracking_tables.COLUMNS))  # fmt: skip
                column_s += time.perf_counter() - started
            sink = TrackingSink(
                clickhouse,
                None,
                codec,
                dedup_window_s=86_400,  # type: ignore[arg-type]
                core=compiled.load("auto"),
            )
            staged_s = 0.0
            for b, batch in enumerate(batches[args.batches :]):
                records = [
                    Record("tracking.events", 0, b * args.rows + i, SYSTEM.encode(), p, ())
                    for i, p in enumerate(batch)
                ]
                started = time.perf_counter()
                if not await sink._staged(records):
                    raise SystemExit("the staged path refused the bench's batch")
                staged_s += time.perf_counter() - started
            stored = await clickhouse.query("SELECT count() AS n FROM tracking_events")
            assert stored[0]["n"] == 2 * args.batches * args.rows, stored
        finally:
            clickhouse.close()
    total = args.batches * args.rows
    return {
        "rows_per_batch": args.rows,
        "column_insert_rows_per_s": round(total / column_s, 1),
        "staged_rows_per_s": round(total / staged_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=6)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
