"""The example plugin's own rules, without any store."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from streamfold_partner_activity import PROJECTION, row

from pipeline.projections import registry

EVENT_ID = uuid.uuid4()


def data(**over: object) -> dict[str, object]:
    return {"partner_id": "p", "system_id": "s", "user_id": None, "anonymous_id": None,
            "timestamp": datetime(2024, 3, 5, 23, 59, 59, tzinfo=UTC), **over}  # fmt: skip


def test_a_user_is_its_user_id_else_its_anonymous_id() -> None:
    assert row(data(user_id="u", anonymous_id="a"), EVENT_ID)[3] == "u"
    assert row(data(anonymous_id="a"), EVENT_ID)[3] == "a"
    assert row(data(), EVENT_ID)[3] == ""


def test_the_day_is_the_event_time_in_utc() -> None:
    assert row(data(), EVENT_ID)[:3] == [date(2024, 3, 5), "p", "s"]


def test_it_is_discovered_through_its_entry_point() -> None:
    assert PROJECTION in registry.discover()
    assert "partner_daily_activity" in registry.analyst_tables()
