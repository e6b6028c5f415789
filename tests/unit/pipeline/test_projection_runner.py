"""The runner's commit order and failure policy for one batch (``pipeline/projections/
runner.py``, ``Instance``), on an in-memory store: what is written, in which order, what
is dead-lettered, what the checkpoint says. The real stores are in
``tests/integration/test_projection_runner.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from connectors.batch import Record
from pipeline.common import failures
from pipeline.projections.catalog import State, Version, first_version
from pipeline.projections.projection import Context, Decoded, Projection, Store
from pipeline.projections.runner import Deps, Instance


class Store_:
    """What the runner calls on ClickHouse, recorded in order (a fake: this is the runner's
    logic, not the store's)."""

    def __init__(self, outages: int = 0) -> None:
        self.log: list[tuple[str, Any]] = []
        self.outages = outages

    async def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Any) -> None:
        if self.outages:
            self.outages -= 1
            raise OperationalError("store down")
        self.log.append((table, [list(r) for r in rows]))


class Letters:
    def __init__(self, store: Store_) -> None:
        self.store = store

    async def send(self, record: Record, reason: str) -> None:
        self.store.log.append(("dead letter", (record.offset, reason)))


def records(*offsets: int, partition: int = 0) -> list[Record]:
    return [Record("t", partition, o, b"k", str(o).encode(), ()) for o in offsets]


async def handle(batch: Sequence[Decoded], ctx: Context) -> list[tuple[Decoded, str]]:
    if any(d.value == "poison" for d in batch):
        raise ValueError("cannot apply")
    refused = [(d, "refused") for d in batch if d.value == "refuse"]
    rows = [[d.offset] for d in batch if d.value not in ("refuse",)]
    await ctx.clickhouse.insert(ctx.tables["rows"], rows, ("offset",))
    return refused


def instance(store: Store_, values: dict[int, str]) -> Instance:
    def decode(raw: bytes) -> str:
        value = values.get(int(raw), "ok")
        if value == "undecodable":
            raise ValueError("not an envelope")
        return value

    projection = Projection(name="p", topics=("t",), store=Store.CLICKHOUSE, handle=handle,
                            tables=("rows",), decode=decode)  # fmt: skip
    deps = Deps(app_id="a", bootstrap="127.0.0.1:1", clickhouse=store, redis=None,  # type: ignore[arg-type]
                codec=None, dead_letters=Letters(store), batch_rows=10,  # type: ignore[arg-type]
                batch_wait_s=0.1)  # fmt: skip
    return Instance(projection, first_version("p"), live=True, applied={}, deps=deps)


def checkpoints(store: Store_) -> list[list[Any]]:
    return [[row[2:5] for row in rows] for table, rows in store.log
            if table == "projection_checkpoints"]  # fmt: skip


def test_rows_then_the_checkpoint_of_the_batch() -> None:
    store = Store_()
    runner = instance(store, {})
    asyncio.run(runner.run_batch([*records(5, 6, 7), *records(3, partition=1)]))
    assert [t for t, _ in store.log] == ["rows", "projection_checkpoints"]
    assert store.log[0][1] == [[5], [6], [7], [3]]
    assert checkpoints(store) == [[["t", 0, 7], ["t", 1, 3]]]
    assert runner.applied == {("t", 0): 7, ("t", 1): 3}
    assert runner._start_at("t", 0) == 8 and runner._start_at("t", 2) is None


def test_a_record_the_handler_fails_on_is_halved_out_and_dead_lettered() -> None:
    store = Store_()
    asyncio.run(instance(store, {12: "poison"}).run_batch(records(10, 11, 12, 13)))
    written = [r[0] for table, rows in store.log if table == "rows" for r in rows]
    assert sorted(written) == [10, 11, 13]
    letters = [v for t, v in store.log if t == "dead letter"]
    assert letters == [(12, "p v1: ValueError: cannot apply")]
    # no checkpoint reaches the poison record's offset before it is dead-lettered
    before = store.log[: [t for t, _ in store.log].index("dead letter")]
    assert all(row[4] < 12 for table, rows in before if table == "projection_checkpoints"
               for row in rows)  # fmt: skip
    assert checkpoints(store)[-1] == [["t", 0, 13]]


def test_refused_and_undecodable_records_are_dead_lettered_before_the_checkpoint() -> None:
    store = Store_()
    asyncio.run(instance(store, {1: "undecodable", 2: "refuse"}).run_batch(records(1, 2, 3)))
    kinds = [t for t, _ in store.log]
    assert kinds == ["dead letter", "rows", "dead letter", "projection_checkpoints"]
    assert [v[0] for t, v in store.log if t == "dead letter"] == [1, 2]
    assert checkpoints(store) == [[["t", 0, 3]]]


def test_a_store_outage_retries_the_batch_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(failures, "RETRY_FIRST_S", 0.001)
    store = Store_(outages=2)
    runner = instance(store, {})
    asyncio.run(runner.run_batch(records(0, 1)))
    assert [t for t, _ in store.log] == ["rows", "projection_checkpoints"]
    assert runner.stats.last_error == ""


def test_a_version_moves_and_keeps_its_birth() -> None:
    v = Version("p", 2, State.BUILDING, "earliest", *([first_version("p").created_at] * 2))
    moved = v.moved(State.LIVE)
    assert (moved.state, moved.version, moved.created_at) == (State.LIVE, 2, v.created_at)
    assert moved.updated_at >= v.updated_at
