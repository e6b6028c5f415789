"""The read side of ClickHouse as the API sees it, and the store process's side of it.

chdb locks its data directory to one process, so with a ``chdb://`` DSN one process, the
store (``streamfold worker --role sinks``), owns the engine and every other process
queries through it: `StoreServer` answers on a Unix socket in the install's home, and
`StoreClient` is what API workers hold. With an ``http(s)://`` DSN the API holds the
clickhouse-connect facade (`connectors.clickhouse.ClickHouse`) itself. Both satisfy
`QueryStore`; `open_query_store` picks one from settings.

Wire format: HTTP over the Unix socket (uvicorn and httpx, as the API), a request and an
answer each one pickle. Pickle keeps ClickHouse's Python types (datetime, UUID, Decimal)
exactly as the in-process facade returns them; the answer is read with an unpickler that
admits only those types (Python docs, ``pickle``, "Restricting Globals"), and the socket
is mode 0600 in a 0700 directory: only the install's own user reaches it.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import io
import ipaddress
import itertools
import os
import pickle
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import structlog
import uvicorn
from clickhouse_connect.driver.exceptions import OperationalError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.exceptions import AnalystQueryError, ConnectorError, ReadOnlyQueryError

log = structlog.get_logger(__name__)

SOCKET_NAME = "store.sock"
_CALL_TIMEOUT_S = 65.0  # above the analyst's max_execution_time (connectors/analyst_sql.py)


class QueryStore(Protocol):
    """What the API asks of ClickHouse. Shapes as `connectors.clickhouse.ClickHouse`."""

    async def query(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...

    async def query_readonly(
        self,
        sql: str,
        *,
        max_rows: int = 1000,
        analyst_dsn: str | None = None,
        excluded_tables: Sequence[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...

    async def ping(self) -> bool: ...

    def close(self) -> None: ...


class QueryPool:
    """A `QueryStore` over several connections to one engine: the API's queries each on
    the next (round robin); analyst SQL always on the first, so analyst statements keep
    their one queue (``ClickHouse.query_readonly``).

    clickhouse-connect's chdb client serialises its calls on one lock, while chdb runs
    queries of different connections in parallel (``chdb.connect``), so concurrent API
    requests no longer wait for each other's queries on one connection.
    """

    def __init__(self, stores: Sequence[QueryStore]) -> None:
        if not stores:
            raise ValueError("a pool needs at least one store")
        self.stores = list(stores)
        self._next = itertools.cycle(self.stores)

    async def query(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return await next(self._next).query(sql, parameters)

    async def query_readonly(
        self,
        sql: str,
        *,
        max_rows: int = 1000,
        analyst_dsn: str | None = None,
        excluded_tables: Sequence[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        narrower = {"excluded_tables": excluded_tables} if excluded_tables else {}
        return await self.stores[0].query_readonly(
            sql, max_rows=max_rows, analyst_dsn=analyst_dsn, **narrower
        )

    async def ping(self) -> bool:
        return await next(self._next).ping()

    def close(self) -> None:
        for store in self.stores:
            store.close()


def socket_path(home: Path) -> Path:
    """Where the store listens: ``<home>/run/store.sock``."""
    return home.resolve() / "run" / SOCKET_NAME


# Errors that cross the socket as themselves; anything else becomes a ConnectorError.
_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (ReadOnlyQueryError, AnalystQueryError, ConnectorError, OperationalError)
}
_SAFE_GLOBALS = {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("uuid", "UUID"),
    ("decimal", "Decimal"),
    ("ipaddress", "IPv4Address"),
    ("ipaddress", "IPv6Address"),
    ("zoneinfo", "ZoneInfo"),
    ("zoneinfo", "_unpickle"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "complex"),
}
# imported for the unpickler's lookups: every module named above is loaded
_ = (datetime, decimal, ipaddress, uuid)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"{module}.{name} is not a query value type")
        return super().find_class(module, name)


def _loads(body: bytes) -> Any:
    return _Unpickler(io.BytesIO(body)).load()


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


_CLIENT_KEEPALIVE_S = 2.0
_SERVER_KEEPALIVE_S = 30


class StoreClient:
    """`QueryStore` through the store process's socket (``chdb://`` installs).

    Raises what the store raised (`ReadOnlyQueryError`, `AnalystQueryError`,
    `ConnectorError`, `OperationalError`); `OperationalError` too when the store cannot
    be reached (starting, restarting), which the API answers as 503.
    """

    def __init__(self, path: Path, *, timeout_s: float = _CALL_TIMEOUT_S) -> None:
        self.path = path
        # The client drops an idle connection (2 s) well before the server does (30 s,
        # StoreServer): with both at their defaults (5 s) a request could go out on a
        # connection uvicorn was closing that instant, "Server disconnected without
        # sending a response", a 503 (found by a fresh make run's load-social).
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(
                uds=str(path), limits=httpx.Limits(keepalive_expiry=_CLIENT_KEEPALIVE_S)
            ),
            base_url="http://store",
            timeout=timeout_s,
        )

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            answer = await self._http.post(f"/{method}", content=_dumps((args, kwargs)))
        except httpx.HTTPError as exc:
            raise OperationalError(f"the store process is not answering: {exc!r}") from exc
        outcome, value = _loads(answer.content)
        if outcome == "ok":
            return value
        name, args_ = value
        raise _ERRORS.get(name, ConnectorError)(*args_)

    async def query(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        return list(await self._call("query", sql, parameters))

    async def query_readonly(
        self,
        sql: str,
        *,
        max_rows: int = 1000,
        analyst_dsn: str | None = None,
        excluded_tables: Sequence[str] = (),
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        narrower = {"excluded_tables": list(excluded_tables)} if excluded_tables else {}
        columns, rows = await self._call(
            "query_readonly", sql, max_rows=max_rows, analyst_dsn=analyst_dsn, **narrower
        )
        return list(columns), [tuple(r) for r in rows]

    async def ping(self) -> bool:
        try:
            return bool(await self._call("ping"))
        except (ConnectorError, OperationalError):
            return False

    def close(self) -> None:
        # the transport's connections are closed with the loop; nothing is in flight here
        pass

    async def aclose(self) -> None:
        await self._http.aclose()


class StoreServer:
    """Answers `StoreClient` for ``store`` (the process's own `QueryStore`, a chdb facade).

    Requests are trusted (the socket is the install user's only); their arguments are
    read with the plain unpickler of the same process family.
    """

    METHODS = ("query", "query_readonly", "ping")

    def __init__(self, store: QueryStore, path: Path) -> None:
        self.store = store
        self.path = path
        self.app = Starlette(routes=[Route("/{method}", self._handle, methods=["POST"])])

    async def _handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        if method not in self.METHODS:
            return Response(status_code=404)
        args, kwargs = pickle.loads(await request.body())
        try:
            value = await getattr(self.store, method)(*args, **kwargs)
            body = _dumps(("ok", value))
        except Exception as exc:  # every failure is the caller's to see, typed
            name = type(exc).__name__ if type(exc).__name__ in _ERRORS else "ConnectorError"
            if name == "ConnectorError" and not isinstance(exc, ConnectorError):
                log.warning("store call failed", method=method, error=repr(exc))
                exc_args: tuple[Any, ...] = (f"store call {method} failed",)
            else:
                exc_args = exc.args
            body = _dumps(("error", (name, exc_args)))
        return Response(body, media_type="application/octet-stream")

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen on ``path`` until ``stop`` is set (a stale socket file is replaced)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        config = uvicorn.Config(
            self.app, uds=str(self.path), log_config=None, access_log=False, lifespan="off",
            timeout_keep_alive=_SERVER_KEEPALIVE_S,
        )  # fmt: skip
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(), name="store-rpc")
        try:
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
            if task.done():
                task.result()
            os.chmod(self.path, 0o600)
            log.info("store listening", socket=str(self.path))
            await stop.wait()
        finally:
            server.should_exit = True
            await task
            self.path.unlink(missing_ok=True)


class _QuietServer(uvicorn.Server):
    """No signal handling of its own: the process's runtime owns SIGTERM (see
    ``deploy/roles/api.py: _Server``)."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    def capture_signals(self) -> Any:  # uvicorn >= 0.29
        import contextlib

        return contextlib.nullcontext()
