"""The analytics SQL builders: bound parameters, never interpolated values."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.problems import Problem
from pipeline.projections.tracking import queries as q

NASTY = "x'); DROP TABLE tracking_events; --"
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def placeholders(sql: str) -> set[str]:
    return set(re.findall(r"\{(\w+):[^}]+\}", sql))


def test_user_values_are_bound_not_interpolated() -> None:
    sql, params = q.events_query(
        [NASTY], event=NASTY, user_id=NASTY, anonymous_id=NASTY, start=T0,
        end=T0 + timedelta(days=1), after=(T0, str(uuid4())), limit=10,
    )  # fmt: skip
    assert NASTY not in sql
    assert placeholders(sql) == set(params)
    assert params["systems"] == [NASTY]
    assert params["event"] == params["user_id"] == params["anonymous_id"] == NASTY
    assert params["limit"] == 11  # one extra row says whether another page exists


@pytest.mark.parametrize(
    "build",
    [
        lambda: q.stats_query([NASTY], T0, T0 + timedelta(hours=1)),
        lambda: q.stats_totals_query([NASTY], T0, None),
        lambda: q.timeseries_query([NASTY], "hour", event=NASTY, start=T0),
        lambda: q.newest_minute_query([NASTY], event=NASTY, start=T0),
        lambda: q.bounds_query([NASTY]),
        lambda: q.funnel_query([NASTY], [NASTY, "b"], 60, start=T0),
        lambda: q.rejections_query([NASTY], 5),
        lambda: q.rejections_total_query([NASTY]),
    ],
)
def test_every_builder_binds_every_value(build) -> None:  # type: ignore[no-untyped-def]
    sql, params = build()
    assert NASTY not in sql
    assert placeholders(sql) == set(params)


def test_no_scope_means_no_system_filter() -> None:
    sql, params = q.stats_query(None)
    assert "system_id" not in sql and "WHERE" not in sql and params == {}


def test_times_are_bound_as_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    _, params = q.stats_query(None, datetime(2024, 3, 1, 14, 0, tzinfo=plus2), datetime(2024, 3, 2))
    assert params["start"] == T0 and params["start"].tzinfo == UTC
    assert params["end"] == datetime(2024, 3, 2, tzinfo=UTC)  # naive = UTC


def test_funnel_has_one_bound_condition_per_step() -> None:
    steps = ["signup", "view", "cart", "buy"]
    sql, params = q.funnel_query(["s"], steps, 3600)
    assert sql.count("event = {s") == len(steps)
    for i, step in enumerate(steps):
        assert f"event = {{s{i}:String}}" in sql and params[f"s{i}"] == step
    assert "windowFunnel({window:UInt64})" in sql and params["window"] == 3600
    assert params["steps"] == steps


def test_funnel_steps_count_users_at_or_past_each_level() -> None:
    levels = [{"level": 0, "users": 7}, {"level": 1, "users": 5}, {"level": 3, "users": 2}]
    assert q.funnel_steps(["a", "b", "c"], levels) == [
        {"event": "a", "users": 7},
        {"event": "b", "users": 2},
        {"event": "c", "users": 2},
    ]
    empty = q.funnel_steps(["a", "b"], [])
    assert empty == [{"event": "a", "users": 0}, {"event": "b", "users": 0}]


@pytest.mark.parametrize(
    ("bucket", "expr"),
    [("minute", "SELECT minute AS bucket"), ("hour", "toStartOfHour(minute) AS bucket"),
     ("day", "toStartOfDay(minute) AS bucket"),
     ("week", "toDateTime(toStartOfWeek(minute, 1), 'UTC') AS bucket")],
)  # fmt: skip
def test_bucket_expression(bucket: q.Bucket, expr: str) -> None:
    sql, _ = q.timeseries_query(None, bucket)
    assert expr in sql
    assert "FROM tracking_minute" in sql and "uniqMerge(users)" in sql and "sum(events)" in sql


def test_bucket_count_counts_partial_edges() -> None:
    assert q.bucket_count(T0, T0 + timedelta(hours=1), "minute") == 60
    ragged = (T0 + timedelta(seconds=30), T0 + timedelta(minutes=1, seconds=1))
    assert q.bucket_count(*ragged, "minute") == 2
    midnight = datetime(2024, 3, 1, tzinfo=UTC)
    assert q.bucket_count(midnight, midnight + timedelta(days=2), "day") == 2
    assert q.bucket_count(T0, T0 + timedelta(days=2), "day") == 3  # noon to noon touches 3 days
    assert q.bucket_count(T0, T0 + timedelta(days=2), "hour") == 48


def test_weeks_start_on_monday() -> None:
    thursday = datetime(2024, 3, 7, 12, 0, tzinfo=UTC)
    monday = datetime(2024, 3, 4, tzinfo=UTC)
    assert monday.weekday() == 0
    assert q.bucket_floor(thursday, "week") == monday == q.bucket_floor(monday, "week")
    assert q.bucket_ceil(thursday, "week") == monday + timedelta(days=7)
    assert q.bucket_count(monday, monday + timedelta(days=14), "week") == 2
    assert q.bucket_count(thursday, thursday + timedelta(days=7), "week") == 2


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from(["minute", "hour", "day", "week"]),
)
def test_a_value_lies_in_its_bucket(value: datetime, bucket: q.Bucket) -> None:
    floor, ceil = q.bucket_floor(value, bucket), q.bucket_ceil(value, bucket)
    assert floor <= q.utc(value) <= ceil
    assert (ceil - floor).total_seconds() in (0, q.BUCKET_SECONDS[bucket])
    assert q.bucket_count(floor, floor + timedelta(microseconds=1), bucket) == 1


def test_default_series_is_whole_buckets_ending_with_the_newest_minute() -> None:
    newest = datetime(2015, 5, 20, 21, 5, tzinfo=UTC)
    for bucket in ("minute", "hour", "day", "week"):
        start, end = q.series_range(bucket, None, None, newest)
        size = timedelta(seconds=q.BUCKET_SECONDS[bucket])
        assert end - size <= newest < end and end == q.bucket_floor(end, bucket)
        assert q.bucket_count(start, end, bucket) == q.DEFAULT_BUCKETS[bucket] <= q.MAX_BUCKETS
    assert q.series_range("hour", None, None, None) is None  # no data, no series


def test_a_missing_bound_is_filled_from_the_other_or_the_data() -> None:
    newest = datetime(2015, 5, 20, 21, 5, tzinfo=UTC)
    start, end = datetime(2015, 5, 1, tzinfo=UTC), datetime(2015, 5, 3, 6, 30, tzinfo=UTC)
    assert q.series_range("hour", start, end, newest) == (start, end)
    assert q.series_range("hour", start, None, newest) == (start, newest + timedelta(minutes=1))
    assert q.series_range("hour", start, None, None) is None
    first, last = q.series_range("hour", None, end, None)
    assert last == end and q.bucket_count(first, last, "hour") == q.DEFAULT_BUCKETS["hour"]


def test_too_many_buckets_is_a_422() -> None:
    q.check_buckets(T0, T0 + timedelta(minutes=q.MAX_BUCKETS), "minute")
    with pytest.raises(Problem) as exc:
        q.check_buckets(T0, T0 + timedelta(minutes=q.MAX_BUCKETS + 1), "minute")
    assert exc.value.status == 422 and exc.value.slug == "too-many-buckets"


def test_start_must_precede_end() -> None:
    q.check_range(T0, None)
    q.check_range(T0, T0 + timedelta(milliseconds=1))
    with pytest.raises(Problem) as exc:
        q.check_range(T0, T0)
    assert exc.value.status == 422


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.uuids(),
)
def test_cursor_round_trip(ts: datetime, event_id) -> None:  # type: ignore[no-untyped-def]
    cursor = q.encode_cursor(ts, event_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor)  # URL-safe as is
    assert q.decode_cursor(cursor) == (ts, str(event_id))


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        b64(b"not json"),
        b64(b"[1, 2]"),
        b64(json.dumps({"t": "yesterday", "id": str(uuid4())}).encode()),
        b64(json.dumps({"t": T0.isoformat(), "id": "nope"}).encode()),
        b64(json.dumps({"t": T0.isoformat()}).encode()),
        b64(b"\xff\xfe"),
    ],
)
def test_bad_cursor_is_a_400(cursor: str) -> None:
    with pytest.raises(Problem) as exc:
        q.decode_cursor(cursor)
    assert exc.value.status == 400 and exc.value.slug == "bad-cursor"


def test_cursor_feeds_the_keyset_condition() -> None:
    event_id = str(uuid4())
    after = q.decode_cursor(q.encode_cursor(T0, event_id))
    sql, params = q.events_query(None, after=after)
    assert "(timestamp, event_id) > ({after_t:DateTime64(3, 'UTC')}, {after_id:UUID})" in sql
    assert "ORDER BY timestamp, event_id" in sql
    assert params["after_t"] == T0 and params["after_id"] == event_id


@pytest.mark.parametrize(
    "bound",
    [
        datetime(1, 1, 1, 0, 0, 7, tzinfo=UTC),  # was a 500 from ClickHouse
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # no UTC time at all
        datetime(9999, 12, 31, tzinfo=UTC),
        datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_bounds_outside_what_the_store_holds_are_a_422(bound: datetime) -> None:
    for start, end in ((bound, None), (None, bound)):
        with pytest.raises(Problem) as raised:
            q.check_range(start, end)
        assert raised.value.status == 422


def test_a_cursor_outside_the_stored_range_is_a_bad_cursor() -> None:
    cursor = q.encode_cursor(datetime(2024, 1, 1, tzinfo=UTC), str(uuid4()))
    assert q.decode_cursor(cursor)[0].year == 2024
    forged = base64.urlsafe_b64encode(
        json.dumps({"t": "0001-01-01T00:00:00+00:00", "id": str(uuid4())}).encode()
    ).decode()
    with pytest.raises(Problem) as raised:
        q.decode_cursor(forged)
    assert raised.value.status == 400
