"""ClickHouse through clickhouse-connect, for both deployments.

``chdb:///path`` opens the embedded ClickHouse engine in this process (chdb locks the
directory: one process only); ``http(s)://user:pass@host:port/db`` talks to a server.
Calls are blocking in both drivers, so the async methods run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import clickhouse_connect
import orjson
import structlog
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, OperationalError

from connectors import analyst_sql, metrics
from connectors.analyst_sql import FunctionCatalog, Select
from connectors.exceptions import ConnectorError, ReadOnlyQueryError

log = structlog.get_logger(__name__)
T = TypeVar("T")
_PARSER_DSN = "chdb://memory"  # an in-process engine without data: the parser for servers


def connect(
    dsn: str, settings: Mapping[str, Any] | None = None, *, session: bool = False
) -> Client:
    """Open a client for ``dsn``; ``settings`` become session settings, applied in order.
    ``session``: a server session of its own (temporary tables live as long as it does;
    its calls must not overlap). A chdb connection is always one session.

    Raises:
        ConnectorError: the server is unreachable or the chdb directory is locked by
            another process (then go through the process that holds it).
    """
    try:
        # tz_mode="aware": DateTime64(6, 'UTC') comes back tz-aware, as the domain requires.
        # No session id unless asked: a server refuses concurrent queries within one
        # session, and the API and the projections share this client.
        extra: dict[str, Any] = {}
        if not dsn.startswith("chdb:"):
            extra["autogenerate_session_id"] = session
        if settings:
            extra["settings"] = dict(settings)
        return clickhouse_connect.get_client(dsn=dsn, tz_mode="aware", **extra)
    except Exception as exc:  # both drivers raise assorted types on connect
        raise ConnectorError(f"cannot open ClickHouse at {dsn}: {exc}") from exc


# ClickHouse error codes (src/Common/ErrorCodes.cpp) that are about the rows of an INSERT:
# the same rows fail the same way however often they are sent. Anything not listed (network,
# timeouts, memory, a missing table or column, a read-only replica, an unknown code) may
# pass, or needs an operator, so it is retried and shows up as a stalled sink instead.
_DATA_ERRORS = {
    6: "CANNOT_PARSE_TEXT",
    25: "CANNOT_PARSE_ESCAPE_SEQUENCE",
    26: "CANNOT_PARSE_QUOTED_STRING",
    27: "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
    38: "CANNOT_PARSE_DATE",
    41: "CANNOT_PARSE_DATETIME",
    53: "TYPE_MISMATCH",
    69: "ARGUMENT_OUT_OF_BOUND",
    70: "CANNOT_CONVERT_TYPE",
    72: "CANNOT_PARSE_NUMBER",
    117: "INCORRECT_DATA",
    131: "TOO_LARGE_STRING_SIZE",
    190: "SIZES_OF_ARRAYS_DONT_MATCH",
    252: "TOO_MANY_PARTS",  # only "for single INSERT block": see refusal()
    321: "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
    349: "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
    407: "DECIMAL_OVERFLOW",
    691: "UNKNOWN_ELEMENT_OF_ENUM",
}


def refusal(exc: BaseException) -> str | None:
    """Why the store refused an insert's rows for what they hold, or None for any other
    failure (retry it). The one place that tells the two apart, for both drivers.

    Errors surface as clickhouse-connect exceptions either way: its chdb backend wraps the
    engine's exceptions in ``DatabaseError`` with the ClickHouse ``code`` and ``name``
    parsed from the text, as the HTTP driver does with the server's answer. A refusal is:

    - a ``DatabaseError`` whose code is in ``_DATA_ERRORS`` (type, parse, overflow and
      range errors). Code 252 TOO_MANY_PARTS is one only when the text says "for single
      INSERT block" (more partitions in one insert than ``max_partitions_per_insert_block``);
      the same code also means "too many active parts, merges are behind", which passes.
    - a value the client cannot serialise into the column's type before anything is sent:
      clickhouse-connect's ``DataError`` (a negative or too large number for an unsigned
      column, None in a non-Nullable column), ``UnicodeEncodeError`` (a lone surrogate),
      ``ValueError``/``TypeError``/``OverflowError`` (a malformed UUID, a wrong type).

    Returns a short reason naming the error (``"TOO_MANY_PARTS (code 252)"``, ``"DataError:
    <first 200 characters>"``) and never ClickHouse's full text, which can quote the rows.
    """
    if isinstance(exc, OperationalError):
        return None  # connection, timeout, a broken stream
    if isinstance(exc, DataError):
        return f"DataError: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    if isinstance(exc, DatabaseError):
        code = exc.code
        if code not in _DATA_ERRORS:
            return None
        if code == 252 and "single INSERT block" not in str(exc):
            return None
        return f"{exc.name or _DATA_ERRORS[code]} (code {code})"
    if isinstance(exc, ValueError | TypeError | OverflowError):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


class ClickHouse:
    """Async facade over one clickhouse-connect client shared by API and projections.

    Calls run in a worker thread (both drivers block). The chdb backend serialises calls
    on its engine handle itself; the HTTP driver runs them concurrently.
    """

    def __init__(
        self,
        client: Client,
        *,
        threads: int = 4,
        dsn: str | None = None,
        analyst_tables: Iterable[str] = (),
    ) -> None:
        """``analyst_tables``: what analyst SQL may read besides ``ALLOWED_TABLES`` (the
        tables projection plugins offer)."""
        self.client = client
        self.dsn = dsn  # analyst SQL opens sessions of its own on it
        self.analyst_tables = analyst_sql.ALLOWED_TABLES | frozenset(analyst_tables)
        self._analyst: _Analyst | None = None
        self._analyst_lock = threading.Lock()
        # Analyst statements (up to max_execution_time each) queue on a thread of their own
        # and never hold up the projections' and the API's calls.
        self._analyst_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analyst")
        # ClickHouse calls get threads of their own, not asyncio's small default pool
        # that argon2 hashing and other blocking work share.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickhouse")

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    @classmethod
    def open(
        cls, dsn: str, *, session: bool = False, analyst_tables: Iterable[str] = ()
    ) -> ClickHouse:
        """A facade over a new client (``connect``; ``session`` as there)."""
        return cls(connect(dsn, session=session), dsn=dsn, analyst_tables=analyst_tables)

    async def command(self, sql: str) -> None:
        await self._call(self.client.command, sql)

    async def insert_select(
        self,
        table: str,
        sql: str,
        parameters: dict[str, Any] | None = None,
        *,
        dedup_token: str | None = None,
    ) -> None:
        """Run ``sql``, an ``INSERT INTO table ... SELECT``; ``parameters`` and
        ``dedup_token`` as in :meth:`query` and :meth:`insert`. ``table`` names the metric."""
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        with metrics.timed(metrics.INSERT_SECONDS, table):
            await self._call(self.client.command, sql, parameters=parameters, settings=settings)

    async def insert_file(self, table: str, columns: Sequence[str], data: bytes, fmt: str) -> None:
        """Insert ``data``, a whole input file of ClickHouse format ``fmt`` (for example
        ``Avro``), which ClickHouse parses itself into ``columns`` of ``table``. Not timed
        in the insert metrics: its tables are staging tables, named per instance."""
        await self._call(self.client.raw_insert, table, list(columns), insert_block=data, fmt=fmt)

    async def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        columns: Sequence[str],
        *,
        dedup_token: str | None = None,
    ) -> None:
        """Insert rows (a list of column-ordered sequences).

        ``dedup_token`` sets ClickHouse's insert_deduplication_token: a retried insert with
        the same token is dropped by the server (needs a MergeTree table with a
        non-replicated deduplication window).
        """
        if not rows:
            return
        settings = {"insert_deduplication_token": dedup_token} if dedup_token else None
        with metrics.timed(metrics.INSERT_SECONDS, table):
            await self._call(
                self.client.insert, table, list(rows), column_names=list(columns), settings=settings
            )
        metrics.INSERT_ROWS.labels(table).inc(len(rows))

    async def query(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts. ``parameters`` bind server-side as ``{name:Type}`` placeholders."""
        result = await self._call(self.client.query, sql, parameters=parameters)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    async def query_readonly(
        self,
        sql: str,
        *,
        max_rows: int = 1000,
        analyst_dsn: str | None = None,
        excluded_tables: Sequence[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one analyst statement if the policy of ``connectors/analyst_sql.py`` allows it,
        over the analyst tables but ``excluded_tables`` (an analyst's narrower set).

        ClickHouse parses ``sql`` (passed as a bound parameter: nothing in it runs), the AST
        is checked, and the canonical statement ClickHouse formatted is what runs, on the
        analyst connection (``readonly = 1`` and the limits of ``ANALYST_SETTINGS``, or the
        server profile of ``analyst_dsn``'s user).

        Returns (column names, rows): at most ``max_rows`` rows.

        Raises:
            ReadOnlyQueryError: the policy refused the statement (``reason`` says why);
                nothing ran.
            AnalystQueryError: ClickHouse could not parse or run it (a short message).
            ConnectorError: ClickHouse gave no usable answer (retry).
            OperationalError: ClickHouse is unreachable.
        """
        named = analyst_sql.fingerprint(sql)  # never the statement itself: it may hold secrets
        loop = asyncio.get_running_loop()

        def call(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
            return loop.run_in_executor(self._analyst_pool, fn, *args)

        analyst = await call(self._analyst_clients, analyst_dsn)
        try:
            parsed = await call(
                _json_sync, analyst.parser, Select(analyst_sql.PARSE_SQL, {"sql": sql})
            )
        except OperationalError:
            raise
        except DatabaseError as exc:
            error = analyst_sql.parse_failure(exc.code, exc.name, str(exc))
            log.info("analyst SQL not parsed", error=str(error), clickhouse=exc.name, **named)
            raise error from None  # ClickHouse's text quotes the statement
        canonical, ast = parsed["data"][0]
        try:
            try:
                tree = orjson.loads(ast)
            except RecursionError:  # ClickHouse's max_ast_depth stops this first
                raise ReadOnlyQueryError("the statement is nested too deeply") from None
            tables = self.analyst_tables - frozenset(excluded_tables)
            select = analyst_sql.check(canonical, tree, analyst.catalog, tables)
        except ReadOnlyQueryError as exc:
            log.warning("analyst SQL refused", reason=exc.reason, **named)
            raise
        try:
            body = await call(_json_sync, analyst.executor, select)
        except OperationalError:
            raise
        except DatabaseError as exc:
            log.info("analyst SQL failed", clickhouse=exc.name, code=exc.code, **named)
            raise analyst_sql.run_failure(exc.code, exc.name) from None
        log.info("analyst SQL ran", rows=len(body["data"]), **named)
        rows = [tuple(r) for r in body["data"][:max_rows]]
        return [m["name"] for m in body["meta"]], rows

    def _analyst_clients(self, analyst_dsn: str | None) -> _Analyst:
        """The analyst's connections, opened once (blocking: call it in a worker thread).

        The executor is ``analyst_dsn`` as it is (a server user whose profile holds readonly
        and the limits: README, "Analyst SQL") or, without one, a new session on this
        store's DSN with ``ANALYST_SETTINGS``; on chdb that is a second handle on the same
        engine, and its ``SET``s do not reach the projections' handle. The parser is chdb:
        this engine when the store is chdb, else an empty in-process one
        (``parseQueryToJSON`` needs ClickHouse 26.8, a server may be older).

        Raises:
            ConnectorError: no DSN to open, or a connection failed.
        """
        with self._analyst_lock:
            if self._analyst is None:
                self._analyst = _open_analyst(self.dsn, analyst_dsn)
            return self._analyst

    async def _json(self, select: Select) -> dict[str, Any]:
        """One JSONCompact result of ``select`` (`_json_sync`), in a worker thread."""
        return await self._call(_json_sync, self.client, select)

    async def ping(self) -> bool:
        try:
            await self._json(Select("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._analyst_pool.shutdown(wait=True)
        self.client.close()
        if self._analyst is not None:
            self._analyst.executor.close()
            if self._analyst.parser is not self._analyst.executor:
                self._analyst.parser.close()


@dataclass(frozen=True)
class _Analyst:
    executor: Client  # runs checked statements
    parser: Client  # parses analyst text: a chdb engine
    catalog: FunctionCatalog  # the parser's functions


def _open_analyst(dsn: str | None, analyst_dsn: str | None) -> _Analyst:
    """See `ClickHouse._analyst_clients`. Raises ConnectorError, with what it opened closed."""
    opened: list[Client] = []
    try:
        if analyst_dsn:
            executor_dsn = analyst_dsn
            opened.append(connect(analyst_dsn))
        elif dsn:
            executor_dsn = dsn
            opened.append(connect(dsn, analyst_sql.ANALYST_SETTINGS))
        else:
            raise ConnectorError("analyst SQL needs the DSN this facade was opened with")
        if not executor_dsn.startswith("chdb:"):
            own = dsn if dsn and dsn.startswith("chdb:") else _PARSER_DSN
            opened.append(connect(own, analyst_sql.ANALYST_SETTINGS))
        executor, parser = opened[0], opened[-1]
        functions = _json_sync(parser, Select(analyst_sql.CATALOG_SQL))["data"]
        combinators = _json_sync(parser, Select(analyst_sql.COMBINATORS_SQL))["data"]
    except Exception as exc:
        for client in opened:
            client.close()
        if isinstance(exc, ConnectorError):
            raise
        raise ConnectorError(f"cannot open the analyst SQL connections: {exc!r}") from exc
    catalog = FunctionCatalog(functions, [row[0] for row in combinators])
    return _Analyst(executor=executor, parser=parser, catalog=catalog)


def _json_sync(client: Client, select: Select) -> dict[str, Any]:
    """One JSONCompact result as a dict (``meta``, ``data``, …). Blocking.

    Non-streaming on purpose: clickhouse-connect 1.12's chdb backend streams Native results
    (chdb send_query), and under the serve process's concurrent load that stream now and
    then raised StreamFailureError carrying the bytes of another query's block (a /readyz
    "SELECT 1"): seen twice in e2e runs, not reproduced in isolation; JSON formats are
    materialised in one call. Even this path once came back with another call's output in
    front of ours (JSONDecodeError "Extra data"; chdb 4.4, under load): a corrupted answer
    is retried once, with a warning, and a second corruption raises ConnectorError. A retry
    runs the statement again, which is why only a `Select` (a constant of ours or a checked
    analyst statement) comes here.
    """
    for attempt in (1, 2):
        raw = client.raw_query(select.sql, parameters=select.parameters, fmt="JSONCompact")
        try:
            return orjson.loads(raw)
        except ValueError as exc:
            if attempt == 2:
                raise ConnectorError(f"corrupted ClickHouse response: {exc}") from exc
            log.warning("corrupted ClickHouse response, retrying", error=str(exc))
    raise AssertionError("unreachable")
