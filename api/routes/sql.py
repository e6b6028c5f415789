"""Read-only SQL for analysts, through the process that owns the ClickHouse engine
(with chdb only one process may open it; ``streamfold sql`` comes here).

What may run is decided in ``connectors/analyst_sql.py``. The statement itself is never
logged (the connector logs a hash and a length)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import APIRouter

from api.deps import ReaderDep, ServicesDep
from api.models.sql import SqlQuery, SqlResult
from api.problems import Problem
from connectors import analyst_sql
from connectors.exceptions import AnalystQueryError, ConnectorError, ReadOnlyQueryError

router = APIRouter(prefix="/api/admin/sql", tags=["analytics"])


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | bytes):
        return str(value)
    return value


@router.post("", response_model=SqlResult)
async def run_sql(body: SqlQuery, services: ServicesDep, who: ReaderDep) -> SqlResult:
    """Run one SELECT over the analyst tables (``connectors/analyst_sql.py``): an admin's
    over all of them, an analyst's over all but the account data (``ACCOUNT_TABLES``).

    Errors (problem+json): 400 ``sql-not-allowed`` when the policy refuses the statement
    (``reason``: "multiple statements", "not a SELECT", "table not allowed: accounts", …;
    nothing ran); 400 ``bad-sql`` when ClickHouse cannot parse or run it (a short message,
    never ClickHouse's own text); 503 when ClickHouse does not answer.
    """
    narrower = (
        {} if who.role == "admin" else {"excluded_tables": sorted(analyst_sql.ACCOUNT_TABLES)}
    )
    try:
        columns, rows = await services.clickhouse.query_readonly(
            body.sql,
            max_rows=body.max_rows,
            analyst_dsn=services.settings.analyst_clickhouse_dsn or None,
            **narrower,
        )
    except ReadOnlyQueryError as exc:
        raise Problem(
            400, "sql-not-allowed", f"statement not allowed: {exc.reason}", reason=exc.reason
        ) from exc
    except AnalystQueryError as exc:
        raise Problem(400, "bad-sql", str(exc)) from exc
    except (ConnectorError, OperationalError) as exc:
        detail = "ClickHouse is not answering; retry shortly"
        raise Problem.retry_later("unavailable", detail) from exc
    return SqlResult(columns=columns, rows=[[_cell(v) for v in row] for row in rows])
