"""Read-only SQL for analysts, through the process that owns the ClickHouse engine
(with chdb only one process may open it; ``streamfold sql`` comes here)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog
from fastapi import APIRouter

from api.deps import AdminDep, ServicesDep
from api.models import SqlQuery, SqlResult
from api.problems import Problem
from connectors.exceptions import ReadOnlyQueryError

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/admin/sql", tags=["analytics"])


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | bytes):
        return str(value)
    return value


@router.post("", response_model=SqlResult)
async def run_sql(body: SqlQuery, services: ServicesDep, _admin: AdminDep) -> SqlResult:
    """Run one read-only statement (ClickHouse ``readonly=2``). 403 for writes, 400 for
    SQL ClickHouse refuses."""
    try:
        columns, rows = await services.clickhouse.query_readonly(body.sql, max_rows=body.max_rows)
    except ReadOnlyQueryError as exc:
        raise Problem(403, "read-only", str(exc)) from exc
    except Exception as exc:  # ClickHouse's syntax/semantic errors: the analyst's to fix
        log.info("analyst query refused", sql=body.sql[:500], error=repr(exc)[:2000])
        raise Problem(400, "bad-sql", str(exc).splitlines()[0][:2000]) from exc
    return SqlResult(columns=columns, rows=[[_cell(v) for v in row] for row in rows])
