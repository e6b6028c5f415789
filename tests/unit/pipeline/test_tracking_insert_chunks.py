"""How the tracking sink cuts a batch into INSERTs and names each one (issue 7).

Before: one INSERT per batch; a batch of events from more than 100 months failed with
ClickHouse code 252 on every retry, forever. And no insert carried a deduplication token,
so two writers of one batch stored it twice.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.projections.tracking.tables import (
    COLUMNS,
    DDL,
    MAX_PARTITIONS_PER_INSERT,
    dedup_token,
    insert_chunks,
)


def row(timestamp: datetime, event_id: str | None = None) -> list[Any]:
    r: list[Any] = [None] * len(COLUMNS)
    r[COLUMNS.index("event_id")] = event_id or str(uuid.uuid4())
    r[COLUMNS.index("timestamp")] = timestamp
    return r


def month(r: list[Any]) -> tuple[int, int]:
    t = r[COLUMNS.index("timestamp")]
    return t.year, t.month


def monthly(n: int, per_month: int = 1) -> list[list[Any]]:
    start = datetime(1990, 1, 15, tzinfo=UTC)
    return [
        row(start + timedelta(days=31 * m, minutes=k)) for m in range(n) for k in range(per_month)
    ]


def test_no_insert_spans_more_than_the_limit_and_every_row_goes_once() -> None:
    rows = monthly(233, per_month=3)  # 233 months: more than twice ClickHouse's 100
    chunks = insert_chunks(rows)
    assert MAX_PARTITIONS_PER_INSERT < 100
    assert [len({month(r) for r in c}) for c in chunks] == [50, 50, 50, 50, 33]
    assert sorted(r[0] for c in chunks for r in c) == sorted(r[0] for r in rows)
    # a month is never split between two inserts
    months = [{month(r) for r in c} for c in chunks]
    assert all(a.isdisjoint(b) for i, a in enumerate(months) for b in months[i + 1 :])


def test_chunks_and_tokens_do_not_depend_on_the_order_of_the_rows() -> None:
    rows = monthly(120, per_month=2)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    first, second = insert_chunks(rows), insert_chunks(shuffled)
    assert first == second
    assert [dedup_token(c) for c in first] == [dedup_token(c) for c in second]


def test_a_token_names_the_set_of_events() -> None:
    rows = monthly(5)
    assert dedup_token(rows) == dedup_token(list(reversed(rows)))
    assert dedup_token(rows) != dedup_token(rows[:-1])
    assert dedup_token(rows).startswith("tracking_events:")


def test_a_small_batch_is_one_insert() -> None:
    rows = monthly(1, per_month=10)
    assert insert_chunks(rows) == [sorted(rows, key=lambda r: r[0])]
    assert insert_chunks([]) == []


def test_the_table_keeps_a_deduplication_window() -> None:
    """Tokens are ignored by a non-replicated MergeTree without this setting (checked on
    chdb 26.9); existing tables get it by ALTER at start."""
    ddl = " ".join(DDL)
    assert "SETTINGS non_replicated_deduplication_window = 10000" in DDL[0]
    assert "ALTER TABLE tracking_events MODIFY SETTING non_replicated_deduplication_window" in ddl
