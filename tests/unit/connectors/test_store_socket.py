"""The store socket (connectors/store.py): types and errors cross as themselves, and the
client reads nothing but query value types."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from connectors import store as store_module
from connectors.exceptions import ConnectorError, ReadOnlyQueryError
from connectors.store import StoreClient, StoreServer

ROW = {
    "id": uuid.UUID("6f1c0de4-59a6-4d0c-9d46-7a1f2b9f3c11"),
    "at": datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
    "amount": Decimal("12.50"),
    "tags": ["a", "b"],
    "n": 7,
}


class Engine:
    """Answers as the chdb facade would; the analyst path refuses."""

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
        if sql == "boom":
            raise RuntimeError("internal detail /var/lib/secret")
        return [ROW, {"sql": sql, "parameters": parameters}]

    async def query_readonly(self, sql: str, **_: Any) -> Any:
        raise ReadOnlyQueryError("table not allowed: accounts")

    async def ping(self) -> bool:
        return True


async def _roundtrip(tmp_path: Path, calls: Any) -> Any:
    stop = asyncio.Event()
    path = tmp_path / "run" / "store.sock"
    serving = asyncio.create_task(StoreServer(Engine(), path).serve(stop))
    client = StoreClient(path, timeout_s=5)
    try:
        while not await client.ping():
            await asyncio.sleep(0.01)
        return await calls(client)
    finally:
        await client.aclose()
        stop.set()
        await serving


def test_rows_keep_their_python_types(tmp_path: Path) -> None:
    rows = asyncio.run(_roundtrip(tmp_path, lambda c: c.query("SELECT 1", {"x": 1})))
    assert rows[0] == ROW
    assert rows[1] == {"sql": "SELECT 1", "parameters": {"x": 1}}


def test_policy_errors_cross_typed_and_others_without_their_text(tmp_path: Path) -> None:
    async def calls(client: StoreClient) -> list[Exception]:
        errors = []
        for call in (lambda: client.query_readonly("SELECT * FROM accounts"),
                     lambda: client.query("boom")):  # fmt: skip
            try:
                await call()
            except Exception as exc:
                errors.append(exc)
        return errors

    refused, failed = asyncio.run(_roundtrip(tmp_path, calls))
    assert isinstance(refused, ReadOnlyQueryError) and refused.reason.startswith("table not")
    assert type(failed) is ConnectorError and "secret" not in str(failed)


def test_a_store_that_is_not_there_is_an_outage(tmp_path: Path) -> None:
    client = StoreClient(tmp_path / "nothing.sock", timeout_s=1)
    with pytest.raises(OperationalError):
        asyncio.run(client.query("SELECT 1"))
    assert asyncio.run(client.ping()) is False


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


def test_the_client_unpickles_value_types_only() -> None:
    assert store_module._loads(pickle.dumps(("ok", [ROW]))) == ("ok", [ROW])
    with pytest.raises(pickle.UnpicklingError):
        store_module._loads(pickle.dumps(("ok", Evil())))


class _Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def query(self, sql: str, parameters: dict | None = None) -> list[dict]:
        return [{"by": self.name}]

    async def query_readonly(
        self, sql: str, *, max_rows: int = 1000, analyst_dsn: str | None = None
    ) -> tuple[list[str], list[tuple]]:
        return ["by"], [(self.name,)]

    async def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def test_a_query_pool_spreads_queries_and_keeps_analyst_sql_on_one_connection() -> None:
    from connectors.store import QueryPool

    stores = [_Recording("a"), _Recording("b"), _Recording("c")]
    pool = QueryPool(stores)  # type: ignore[arg-type]

    async def run() -> tuple[list[str], list[str]]:
        spread = [(await pool.query("SELECT 1"))[0]["by"] for _ in range(6)]
        analyst = [(await pool.query_readonly("SELECT 1"))[1][0][0] for _ in range(3)]
        return spread, analyst

    spread, analyst = asyncio.run(run())
    assert spread == ["a", "b", "c", "a", "b", "c"]
    assert analyst == ["a", "a", "a"]
    pool.close()
    assert all(s.closed for s in stores)
