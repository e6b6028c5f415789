"""SQL for the analytics routes, as pure functions returning ``(sql, params)``.

Every value a caller supplies is bound server-side as a ``{name:Type}`` placeholder; the
only text spliced into a statement comes from this module (fixed clauses, a bucket
expression chosen from a fixed table, placeholder names it generated itself).

Time ranges are half-open: ``start`` inclusive, ``end`` exclusive, both UTC (a naive
datetime is taken as UTC). Scope: ``systems`` None = every system, else ``system_id IN``.
Buckets are aligned as ClickHouse aligns them: minutes, hours and days to the UTC epoch,
weeks to Monday 00:00 UTC (``toStartOfWeek(…, 1)``).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import orjson

from pipeline.common.problems import Problem

Bucket = Literal["minute", "hour", "day", "week"]
Query = tuple[str, dict[str, Any]]

MAX_BUCKETS = 10_000
"""A time series longer than this is refused (422) rather than computed and shipped."""

DEFAULT_BUCKETS: dict[str, int] = {"minute": 1440, "hour": 48, "day": 60, "week": 52}
"""How many buckets a time series covers when the caller gives no ``start``: 24 h of
minutes, 48 hours, 60 days, 52 weeks (see ``series_range``)."""

BUCKET_SECONDS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
_BUCKET_OFFSET: dict[str, int] = {"week": 4 * 86_400}
"""Seconds from the epoch to the first bucket start: 1970-01-01 was a Thursday, so the
first Monday (where ``toStartOfWeek(t, 1)`` weeks start) is 4 days later."""
_BUCKET_EXPR: dict[str, str] = {
    "minute": "minute",
    "hour": "toStartOfHour(minute)",
    "day": "toStartOfDay(minute)",
    # toStartOfWeek returns a Date; as a DateTime every bucket column has one type.
    "week": "toDateTime(toStartOfWeek(minute, 1), 'UTC')",
}
_TIME = "DateTime64(3, 'UTC')"


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


STORED_FROM = datetime(1900, 1, 1, tzinfo=UTC)
STORED_UNTIL = datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The span ClickHouse's DateTime64 holds (its documented range): a bound outside it
cannot match a stored event, and ClickHouse cannot even read it."""


def check_range(start: datetime | None, end: datetime | None) -> None:
    """Raises: Problem 422 when a bound is outside ``[STORED_FROM, STORED_UNTIL]`` (or
    cannot be converted to UTC), or when both are given and ``start >= end``."""
    bounds = {}
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        try:
            bounds[name] = utc(value)
            stored = STORED_FROM <= bounds[name] <= STORED_UNTIL
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 has no UTC time at all
            stored = False
        if not stored:
            raise Problem(
                422,
                "validation",
                f"{name} must be between {STORED_FROM.isoformat()} and "
                f"{STORED_UNTIL.isoformat()}, the times the store holds",
            )
    if "start" in bounds and "end" in bounds and bounds["start"] >= bounds["end"]:
        raise Problem(422, "validation", "start must be before end")


def _where(
    systems: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    *,
    time_column: str,
) -> tuple[list[str], dict[str, Any]]:
    """The scope and time-range conditions shared by every query."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if systems is not None:
        clauses.append("system_id IN {systems:Array(String)}")
        params["systems"] = list(systems)
    if start is not None:
        clauses.append(f"{time_column} >= {{start:{_TIME}}}")
        params["start"] = utc(start)
    if end is not None:
        clauses.append(f"{time_column} < {{end:{_TIME}}}")
        params["end"] = utc(end)
    return clauses, params


def _render_where(clauses: Iterable[str]) -> str:
    clauses = list(clauses)
    return "WHERE " + " AND ".join(clauses) if clauses else ""


# -- cursor ---------------------------------------------------------------------------


def encode_cursor(timestamp: datetime, event_id: UUID | str) -> str:
    """The opaque keyset cursor: base64url (unpadded) of JSON ``{"t": iso, "id": uuid}``."""
    raw = orjson.dumps({"t": utc(timestamp).isoformat(), "id": str(event_id)}).decode()
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The ``(timestamp, event_id)`` a cursor points after.

    Raises: Problem 400 ``bad-cursor`` for anything ``encode_cursor`` did not produce.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        at = utc(datetime.fromisoformat(data["t"]))
        if not STORED_FROM <= at <= STORED_UNTIL:
            raise ValueError("outside the stored range")
        return at, str(UUID(data["id"]))
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError) as exc:
        # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors; a non-dict body
        # gives TypeError on subscripting.
        raise Problem(400, "bad-cursor", "cursor is not one this API returned") from exc


# -- queries --------------------------------------------------------------------------

EVENT_COLUMNS = (
    "event_id", "system_id", "event", "message_id", "user_id", "anonymous_id", "timestamp",
    "received_at", "properties", "context", "schema_valid",
)  # fmt: skip


def events_query(
    systems: Sequence[str] | None,
    *,
    event: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> Query:
    """Raw events sorted by ``(timestamp, event_id)``, strictly after the ``after`` key.

    Asks for ``limit + 1`` rows: the extra row, when present, says another page exists.
    """
    clauses, params = _where(systems, start, end, time_column="timestamp")
    for column, value in (("event", event), ("user_id", user_id), ("anonymous_id", anonymous_id)):
        if value is not None:
            clauses.append(f"{column} = {{{column}:String}}")
            params[column] = value
    if after is not None:
        clauses.append(f"(timestamp, event_id) > ({{after_t:{_TIME}}}, {{after_id:UUID}})")
        params["after_t"], params["after_id"] = utc(after[0]), after[1]
    params["limit"] = limit + 1
    sql = (
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM tracking_events {_render_where(clauses)} "
        "ORDER BY timestamp, event_id LIMIT {limit:UInt32}"
    )
    return sql, params


def stats_query(
    systems: Sequence[str] | None, start: datetime | None = None, end: datetime | None = None
) -> Query:
    """Per event name: ``event``, ``events`` (count), ``unique_users`` (exact distinct
    ``distinct_id``), most frequent first."""
    clauses, params = _where(systems, start, end, time_column="timestamp")
    sql = (
        "SELECT event, count() AS events, uniqExact(distinct_id) AS unique_users "
        f"FROM tracking_events {_render_where(clauses)} "
        "GROUP BY event ORDER BY events DESC, event"
    )
    return sql, params


def stats_totals_query(
    systems: Sequence[str] | None, start: datetime | None = None, end: datetime | None = None
) -> Query:
    """One row: ``events``, ``unique_users`` over all names (not the sum of the per-name
    uniques: one user may send several names), ``first_at``/``last_at`` (null when empty)."""
    clauses, params = _where(systems, start, end, time_column="timestamp")
    sql = (
        "SELECT count() AS events, uniqExact(distinct_id) AS unique_users, "
        "if(count() = 0, NULL, min(timestamp)) AS first_at, "
        "if(count() = 0, NULL, max(timestamp)) AS last_at "
        f"FROM tracking_events {_render_where(clauses)}"
    )
    return sql, params


def timeseries_query(
    systems: Sequence[str] | None,
    bucket: Bucket,
    *,
    event: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Query:
    """``bucket``, ``events``, ``unique_users`` per non-empty bucket from the per-minute
    rollup, oldest first. A minute counts when its start lies in ``[start, end)``.
    ``unique_users`` is ClickHouse's approximate ``uniq`` (exact at small counts)."""
    clauses, params = _where(systems, start, end, time_column="minute")
    if event is not None:
        clauses.append("event = {event:String}")
        params["event"] = event
    sql = (
        f"SELECT {_BUCKET_EXPR[bucket]} AS bucket, sum(events) AS events, "
        f"uniqMerge(users) AS unique_users FROM tracking_minute {_render_where(clauses)} "
        "GROUP BY bucket ORDER BY bucket"
    )
    return sql, params


def newest_minute_query(
    systems: Sequence[str] | None, *, event: str | None = None, start: datetime | None = None
) -> Query:
    """One row ``newest``: the start of the newest minute with data in the per-minute rollup
    at or after ``start`` (null when none): where an open-ended time series stops."""
    clauses, params = _where(systems, start, None, time_column="minute")
    if event is not None:
        clauses.append("event = {event:String}")
        params["event"] = event
    sql = (
        "SELECT if(count() = 0, NULL, max(minute)) AS newest "
        f"FROM tracking_minute {_render_where(clauses)}"
    )
    return sql, params


def bounds_query(systems: Sequence[str] | None) -> Query:
    """One row: ``events`` (count), ``first_at``/``last_at`` (the oldest and newest event
    timestamps; null when there is none). One pass over the scope's ``timestamp`` column."""
    clauses, params = _where(systems, None, None, time_column="timestamp")
    sql = (
        "SELECT count() AS events, if(count() = 0, NULL, min(timestamp)) AS first_at, "
        "if(count() = 0, NULL, max(timestamp)) AS last_at "
        f"FROM tracking_events {_render_where(clauses)}"
    )
    return sql, params


def bucket_floor(value: datetime, bucket: Bucket) -> datetime:
    """The start of the bucket holding ``value`` (UTC), aligned as ClickHouse aligns it."""
    size, offset = BUCKET_SECONDS[bucket], _BUCKET_OFFSET.get(bucket, 0)
    n = math.floor((utc(value).timestamp() - offset) / size)
    return datetime.fromtimestamp(n * size + offset, UTC)


def bucket_ceil(value: datetime, bucket: Bucket) -> datetime:
    """``value`` when it is a bucket start, else the start of the next bucket (UTC)."""
    floor = bucket_floor(value, bucket)
    return floor if floor == utc(value) else floor + timedelta(seconds=BUCKET_SECONDS[bucket])


def bucket_count(start: datetime, end: datetime, bucket: Bucket) -> int:
    """How many buckets ``[start, end)`` touches, counting partial ones at either edge."""
    if utc(end) <= utc(start):
        return 0
    first, stop = bucket_floor(start, bucket), bucket_ceil(end, bucket)
    return round((stop - first).total_seconds()) // BUCKET_SECONDS[bucket]


def check_buckets(start: datetime, end: datetime, bucket: Bucket) -> None:
    """Raises: Problem 422 ``too-many-buckets`` past ``MAX_BUCKETS``."""
    n = bucket_count(start, end, bucket)
    if n > MAX_BUCKETS:
        raise Problem(
            422, "too-many-buckets",
            f"{n} {bucket} buckets exceed the limit of {MAX_BUCKETS}: narrow the range or "
            "use a coarser bucket",
        )  # fmt: skip


def series_range(
    bucket: Bucket,
    start: datetime | None,
    end: datetime | None,
    newest_minute: datetime | None,
) -> tuple[datetime, datetime] | None:
    """The ``[start, end)`` (UTC) a time series covers, a missing bound filled in:

    - both given: as given;
    - only ``end``: the ``DEFAULT_BUCKETS[bucket]`` buckets up to ``end`` (the last one cut
      at ``end``);
    - only ``start``: from ``start`` through the newest minute with data;
    - neither: the ``DEFAULT_BUCKETS[bucket]`` whole buckets ending with the bucket of the
      newest minute with data, so historical data (the demo's 1995 and 2015 web logs) is
      shown where it is rather than as an empty range before now.

    ``newest_minute``: the start of the newest minute with data in scope (at or after
    ``start``; ``newest_minute_query``), only read when ``end`` is None. Returns None when
    the range depends on it and there is no data: the series is empty.
    """
    width = timedelta(seconds=BUCKET_SECONDS[bucket] * DEFAULT_BUCKETS[bucket])
    if end is not None:
        return (start, end) if start is not None else (bucket_ceil(end, bucket) - width, end)
    if newest_minute is None:
        return None
    stop = utc(newest_minute) + timedelta(minutes=1)
    if start is not None:
        return start, stop
    stop = bucket_ceil(stop, bucket)
    return stop - width, stop


def funnel_query(
    systems: Sequence[str] | None,
    steps: Sequence[str],
    window_s: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Query:
    """Rows ``level``, ``users``: how many distinct ids reached exactly each funnel level
    (ClickHouse ``windowFunnel`` over whole seconds; ``window_s`` seconds from the first
    step). Ids that are empty (no user nor anonymous id) are left out."""
    clauses, params = _where(systems, start, end, time_column="timestamp")
    clauses += ["event IN {steps:Array(String)}", "distinct_id != ''"]
    params["steps"] = list(steps)
    # The names are bound; only the generated placeholder names reach the SQL text.
    conditions = ", ".join(f"event = {{s{i}:String}}" for i in range(len(steps)))
    params.update({f"s{i}": step for i, step in enumerate(steps)})
    params["window"] = window_s
    sql = (
        "SELECT level, count() AS users FROM ("
        "SELECT distinct_id, windowFunnel({window:UInt64})(toDateTime(timestamp), "
        f"{conditions}) AS level FROM tracking_events {_render_where(clauses)} "
        "GROUP BY distinct_id) GROUP BY level ORDER BY level"
    )
    return sql, params


def funnel_steps(steps: Sequence[str], levels: Iterable[Mapping[str, Any]]) -> list[dict]:
    """``[{"event", "users"}]`` per step: the users of step k reached level k or beyond."""
    reached = [0] * (len(steps) + 1)
    for row in levels:
        reached[min(int(row["level"]), len(steps))] += int(row["users"])
    out, running = [], 0
    for k in range(len(steps), 0, -1):
        running += reached[k]
        out.append({"event": steps[k - 1], "users": running})
    return out[::-1]


def rejections_query(systems: Sequence[str] | None, limit: int) -> Query:
    """The newest ``limit`` rejected events (FINAL: a replayed rejection counts once)."""
    clauses, params = _where(systems, None, None, time_column="received_at")
    params["limit"] = limit
    sql = (
        "SELECT system_id, event, message_id, reasons, received_at "
        f"FROM tracking_rejections FINAL {_render_where(clauses)} "
        "ORDER BY received_at DESC, partition DESC, offset DESC LIMIT {limit:UInt32}"
    )
    return sql, params


def rejections_total_query(systems: Sequence[str] | None) -> Query:
    """One row ``total``: every rejection in scope."""
    clauses, params = _where(systems, None, None, time_column="received_at")
    sql = f"SELECT count() AS total FROM tracking_rejections FINAL {_render_where(clauses)}"
    return sql, params
