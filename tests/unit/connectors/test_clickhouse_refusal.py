"""Which insert failures are about the rows (dead-letter them) and which may pass (retry).

The exceptions are the ones clickhouse-connect raises, built as its chdb backend and HTTP
driver build them (``code`` and ``name`` parsed from ClickHouse's answer); the texts are
ClickHouse 26.9's, seen on chdb.
"""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    StreamFailureError,
)

from connectors.clickhouse import refusal

PARTITIONS = (
    "Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100). "
    "The limit is controlled by 'max_partitions_per_insert_block' setting. (TOO_MANY_PARTS)"
)
MERGES_BEHIND = (
    "Code: 252. DB::Exception: Too many parts (3001 with average size of 1.00 KiB) in table "
    "'default.tracking_events'. Merges are processing significantly slower than inserts. "
    "(TOO_MANY_PARTS)"
)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (DatabaseError(PARTITIONS, code=252, name="TOO_MANY_PARTS"), "TOO_MANY_PARTS (code 252)"),
        (DatabaseError("x", code=53, name="TYPE_MISMATCH"), "TYPE_MISMATCH (code 53)"),
        (DatabaseError("x", code=321, name=None), "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE (code 321)"),
        (
            DataError("Unable to create native array for column `partition`: error"),
            "DataError: Unable to create native array for column `partition`: error",
        ),
        (
            UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"),
            "UnicodeEncodeError: 'utf-8' codec can't encode character '\\ud800' in position 0:"
            " surrogates not allowed",
        ),
        (ValueError("invalid literal for int() with base 16: 'notauuid'"), None),
    ],
)
def test_refusals_of_the_rows(exc: BaseException, reason: str | None) -> None:
    found = refusal(exc)
    if reason is None:
        assert found is not None and found.startswith("ValueError: ")
    else:
        assert found == reason


@pytest.mark.parametrize(
    "exc",
    [
        DatabaseError(MERGES_BEHIND, code=252, name="TOO_MANY_PARTS"),  # same code, transient
        DatabaseError("generic", code=252),  # text scrubbed: cannot tell, so retry
        DatabaseError("x", code=241, name="MEMORY_LIMIT_EXCEEDED"),
        DatabaseError("x", code=60, name="UNKNOWN_TABLE"),  # an operator's problem: stall
        DatabaseError("x", code=None),
        OperationalError("connection refused"),
        StreamFailureError(),
        ConnectionResetError(),
        TimeoutError(),
        RuntimeError("?"),
    ],
    ids=repr,
)
def test_everything_else_is_retried(exc: BaseException) -> None:
    assert refusal(exc) is None
