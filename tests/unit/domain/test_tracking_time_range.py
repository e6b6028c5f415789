"""Client times the store does not hold are refused with the accepted range (issue 7).

Before: years 1 and 9999 were accepted and landed in the per-minute view as 1970 and 2106
(``toStartOfMinute`` returns a 32-bit ``DateTime``), an event dated in the future blanked
the dashboard's 24-hour window, and one batch spanning more than 100 months stalled the
ClickHouse sink.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline.domain.tracking import (
    EARLIEST_TIMESTAMP,
    LATEST_CLIENT_TIME,
    MAX_FUTURE_SKEW,
    EventRejection,
    RejectReason,
    SdkRequest,
    TrackedEvent,
    time_range_problem,
)
from tests.unit.domain.tracking_samples import RECEIVED, decode, parse


def out_of_range(raw: dict[str, Any], **kw: Any) -> str:
    result = parse(raw, **kw)
    assert isinstance(result, EventRejection), result
    assert result.reason is RejectReason.TIMESTAMP_OUT_OF_RANGE
    assert result.reason == "timestamp_out_of_range"  # the API contract's spelling
    return result.message


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59.999Z",
        "2106-02-07T06:28:16Z",  # past what the per-minute view's DateTime holds
        -1,  # epoch seconds before 1970
        "2024-05-02T12:00:00.501Z",  # received + 1 day + 1 ms
    ],
)
def test_times_outside_the_range_are_refused_with_the_range(timestamp: Any) -> None:
    message = out_of_range({"event": "e", "userId": "u", "timestamp": timestamp})
    assert "1970-01-01T00:00:00.000Z to 2024-05-02T12:00:00.500Z" in message
    assert "received time + 1 day" in message


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0, EARLIEST_TIMESTAMP),  # both bounds are inclusive
        ("2024-05-02T12:00:00.500Z", RECEIVED + MAX_FUTURE_SKEW),
        ("1995-08-01T00:00:00Z", datetime(1995, 8, 1, tzinfo=UTC)),  # the demo web logs
    ],
)
def test_times_inside_the_range_are_kept(timestamp: Any, expected: datetime) -> None:
    result = parse({"event": "e", "userId": "u", "timestamp": timestamp})
    assert isinstance(result, TrackedEvent) and result.timestamp == expected


def test_the_corrected_time_is_what_counts_for_a_skewed_clock() -> None:
    # a device 3 days ahead, with sentAt: the correction brings it back to now
    ahead = RECEIVED + timedelta(days=3)
    raw = {"event": "e", "userId": "u", "timestamp": ahead.isoformat(),
           "sentAt": (ahead + timedelta(seconds=2)).isoformat()}  # fmt: skip
    result = parse(raw)
    assert isinstance(result, TrackedEvent)
    assert result.timestamp == RECEIVED - timedelta(seconds=2)
    assert result.original_timestamp == ahead  # the client's time is kept beside it


def test_a_correction_that_lands_outside_the_range_is_refused() -> None:
    raw = {"event": "e", "userId": "u", "timestamp": "2024-05-01T10:00:00Z",
           "sentAt": "1990-01-01T00:00:00Z"}  # fmt: skip
    assert out_of_range(raw).startswith("timestamp 2058-")


def test_a_client_time_beyond_datetime64_is_refused_even_when_corrected() -> None:
    raw = {"event": "e", "userId": "u", "timestamp": "2400-01-01T00:00:00Z",
           "sentAt": "2400-01-01T00:00:01Z"}  # fmt: skip
    message = out_of_range(raw)
    assert message == (
        "the client's timestamp 2400-01-01T00:00:00.000Z is outside the accepted range "
        "1900-01-01T00:00:00.000Z to 2299-12-31T23:59:59.999Z"
    )


def test_one_bad_time_refuses_that_event_only() -> None:
    request = SdkRequest(
        [
            {"event": "a", "userId": "u", "timestamp": "2020-01-01T00:00:00Z"},
            {"event": "b", "userId": "u", "timestamp": "0001-01-01T00:00:00Z"},
            {"event": "c", "userId": "u"},
        ]
    )
    results = decode(request)
    kinds = [r.reason if isinstance(r, EventRejection) else "ok" for r in results]
    assert kinds == ["ok", RejectReason.TIMESTAMP_OUT_OF_RANGE, "ok"]


def test_the_rule_reads_only_the_event() -> None:
    """Validation and the sink apply it to old records: the bounds come from the event's
    own received time, not the clock of whoever checks."""
    ok = (RECEIVED, RECEIVED, RECEIVED)
    assert time_range_problem(*ok) is None
    assert time_range_problem(EARLIEST_TIMESTAMP, LATEST_CLIENT_TIME, RECEIVED) is None
    future = RECEIVED + MAX_FUTURE_SKEW + timedelta(microseconds=1)
    assert time_range_problem(future, RECEIVED, RECEIVED) is not None
    assert time_range_problem(future, RECEIVED, RECEIVED + timedelta(hours=1)) is None
