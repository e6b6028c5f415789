"""Analyst SQL: the request and its tabular answer (``api/routes/sql.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.models.common import STRICT


class SqlQuery(BaseModel):
    model_config = STRICT
    sql: str = Field(min_length=1, max_length=100_000)
    max_rows: int = Field(default=1000, ge=1, le=100_000)


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
