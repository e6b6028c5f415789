"""The tracking sink's dedup check (``stored_ids_sql``) against a growing ``tracking_events``.

The sink asks, for every batch, which of its event ids are already stored (received within
the dedup window). This fills a scratch chdb engine, with the project's own tables, up to
each of ``--sizes`` rows for one system (received over ``--days`` days, so most rows are
older than the window), and times the check for ``--batch`` fresh ids and for ``--batch``
ids of which half are stored (recent ones), ``--repeats`` times each.

Usage: python bench/dedup.py [--sizes 1000000 5000000 10000000] [--batch 50000]
Prints a table; writes bench/results/local/dedup-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import write_results  # noqa: E402
from connectors.clickhouse import ClickHouse  # noqa: E402
from pipeline.projections import migrate  # noqa: E402
from pipeline.projections.tracking import tables as tracking_tables  # noqa: E402

SYSTEM = "sys-dedup-bench"

# rows made by the engine itself (a Python loop would take minutes per 10M); received_at
# runs evenly from now - days to now, so the newest rows are the ones within the window
FILL_SQL = """
INSERT INTO tracking_events (event_id, partner_id, system_id, type, event, message_id,
    user_id, anonymous_id, distinct_id, timestamp, original_timestamp, received_at,
    properties, traits, context, schema_valid, structure_version, topic, partition, offset)
SELECT generateUUIDv4(), 'p', '{system}', 'track', 'page_view', toString(number),
    concat('u', toString(number % 5000)), NULL, concat('u', toString(number % 5000)),
    received, received, received, '{{}}', '{{}}', '{{}}', 1, 1, 'tracking.events', 0,
    {start} + number
FROM (
    SELECT number,
        toDateTime64({end_s}, 3, 'UTC') - toIntervalMillisecond(
            toUInt64(({total} - ({start} + number)) * {span_ms} / {total})) AS received
    FROM numbers({count})
)
"""


async def fill(clickhouse: ClickHouse, start: int, count: int, total: int, days: float) -> None:
    end_s = int(time.time())
    await clickhouse.command(
        FILL_SQL.format(system=SYSTEM, start=start, count=count, total=total,
                        end_s=end_s, span_ms=int(days * 86_400_000))
    )  # fmt: skip


async def check_ms(clickhouse: ClickHouse, ids: list[str], window_s: int) -> tuple[float, int]:
    params = {
        "systems": [SYSTEM],
        "ids": ids,
        "since": datetime.now(UTC) - timedelta(seconds=window_s),
    }
    started = time.perf_counter()
    rows = await clickhouse.query(tracking_tables.stored_ids_sql("tracking_events"), params)
    return (time.perf_counter() - started) * 1000, len(rows)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="streamfold-dedup-") as tmp:
        clickhouse = ClickHouse.open(f"chdb://{tmp}")
        await migrate(clickhouse)
        have = 0
        biggest = max(args.sizes)
        for size in sorted(args.sizes):
            started = time.perf_counter()
            await fill(clickhouse, have, size - have, biggest, args.days)
            have = size
            await clickhouse.command("OPTIMIZE TABLE tracking_events FINAL")
            filled_s = time.perf_counter() - started
            recent = await clickhouse.query(
                "SELECT toString(event_id) AS id FROM tracking_events "
                "ORDER BY received_at DESC LIMIT {n:UInt32}",
                {"n": args.batch // 2},
            )
            fresh = [str(uuid.uuid4()) for _ in range(args.batch)]
            half = [r["id"] for r in recent] + fresh[: args.batch - len(recent)]
            timings: dict[str, Any] = {}
            for name, ids in (("fresh", fresh), ("half_stored", half)):
                samples, found = [], 0
                for _ in range(args.repeats):
                    ms, found = await check_ms(clickhouse, ids, args.window_s)
                    samples.append(ms)
                timings[name] = {"median_ms": round(statistics.median(samples), 1),
                                 "min_ms": round(min(samples), 1), "found": found}  # fmt: skip
            results[str(size)] = {"fill_s": round(filled_s, 1), **timings}
            fresh_ms, half = timings["fresh"]["median_ms"], timings["half_stored"]
            print(
                f"{size:>12,} rows  fill {filled_s:6.1f} s  fresh {fresh_ms:8.1f} ms"
                f"  half stored {half['median_ms']:8.1f} ms (found {half['found']:,})"
            )
        clickhouse.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 10_000_000])
    parser.add_argument("--batch", type=int, default=50_000, help="ids per check (sink batch)")
    parser.add_argument("--days", type=float, default=10.0, help="received_at spread, days")
    parser.add_argument("--window-s", type=int, default=86_400, help="the dedup window, s")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    path = write_results("dedup", args, [results], results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
