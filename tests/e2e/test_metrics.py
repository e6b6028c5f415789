"""``GET /metrics``: what every role counts, read back from a real stack after real traffic.

The server is shared by the session, so every assertion is on the change a test caused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from pipeline.domain.users import USER_SPEC
from tests.e2e.test_tracking import new_system, post_batch, stored
from tests.support import ServeProcess, wait_for

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: ServeProcess) -> Samples:
    response = httpx.get(f"{server.settings.api_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def grown(
    server: ServeProcess, before: Samples, check: Callable[[Callable[..., float]], bool]
) -> Samples:
    """Scrape until ``check(delta)`` holds, ``delta(name, **labels)`` being the change
    since ``before`` (the pipeline's counters move after the request returned)."""

    def ready() -> Samples | None:
        now = scrape(server)

        def delta(name: str, **labels: str) -> float:
            return total(now, name, **labels) - total(before, name, **labels)

        return now if check(delta) else None

    return wait_for(ready, timeout_s=30, what="metrics to move", every_s=0.3)


def test_ingest_validation_store_and_requests_are_counted(
    admin: httpx.Client, server: ServeProcess
) -> None:
    system = new_system(admin)
    before = scrape(server)
    events: list[dict[str, Any]] = [
        {"event": "page_view", "user_id": f"u-{i}", "properties": {"path": f"/p/{i}"}}
        for i in range(30)
    ]
    events += [{"event": "page_view", "properties": {"path": "/x"}}] * 2  # no user id
    events += [{"event": "page_view", "user_id": "u-bad", "properties": {"status": 1}}]
    reply = post_batch(server, system["api_key"], events)
    assert reply["accepted"] == 31 and reply["rejected"] == 2
    stored(admin, system["system_id"], 30)
    missing = admin.get(f"/api/admin/users/{uuid.uuid4()}")
    assert missing.status_code == 404

    def moved(delta: Callable[..., float]) -> bool:
        events = "streamfold_tracking_events_total"
        return (
            delta(events, stage="ingest", outcome="accepted") == 31
            and delta(events, stage="ingest", outcome="rejected", reason="missing_id") == 2
            and delta(events, stage="validation", outcome="accepted") >= 30
            and delta(events, stage="validation", outcome="rejected", reason="structure") >= 1
            and delta("streamfold_clickhouse_insert_rows_total", table="tracking_events") >= 30
            and delta(
                "streamfold_http_requests_total", route="/v1/batch", method="POST", status="200"
            )
            == 1
            and delta(
                "streamfold_http_requests_total",
                route="/api/admin/users/{user_id}",
                method="GET",
                status="404",
            )
            == 1
        )

    after = grown(server, before, moved)
    duration = "streamfold_http_request_duration_seconds_count"
    assert total(after, duration, route="/v1/batch") > total(before, duration, route="/v1/batch")
    # the sink's batches and inserts are timed; every produce group of the path is timed
    sink = f"{server.settings.app_id}-tracking-sink"
    assert total(after, "streamfold_consumer_batch_records_sum", group=sink) >= 30
    assert total(after, "streamfold_consumer_batch_seconds_count", group=sink) >= 1
    assert total(after, "streamfold_clickhouse_insert_seconds_count", table="tracking_events") >= 1
    assert total(after, "streamfold_kafka_produce_seconds_count") > total(
        before, "streamfold_kafka_produce_seconds_count"
    )
    # the partner's commands went through the command agent's batches
    assert total(after, "streamfold_consumer_batch_records_sum", group="partner-commands") >= 1


def test_consumer_lag_is_reported_per_partition(admin: httpx.Client, server: ServeProcess) -> None:
    """A partition a consumer has read from has a lag gauge, back at 0 once the records
    are handled (a partition nothing was ever read from has no position yet: no series)."""
    system = new_system(admin)
    events = [
        {"event": "page_view", "user_id": f"u{i}", "properties": {"path": "/"}} for i in range(20)
    ]
    post_batch(server, system["api_key"], events)
    stored(admin, system["system_id"], 20)
    app = server.settings.app_id

    def caught_up() -> dict[str, dict[str, dict[str, float]]] | None:
        lags: dict[str, dict[str, dict[str, float]]] = {}
        for (name, labels), value in scrape(server).items():
            if name == "streamfold_consumer_lag_records":
                label = dict(labels)
                topic = lags.setdefault(label["group"], {}).setdefault(label["topic"], {})
                topic[label["partition"]] = value
        wanted = (f"{app}-tracking-validation", f"{app}-tracking-sink")
        done = all(
            lags.get(g) and {v for p in lags[g].values() for v in p.values()} == {0} for g in wanted
        )
        return lags if done else None

    lags = wait_for(caught_up, timeout_s=30, what="tracking lag reported, back at 0", every_s=0.5)
    assert set(lags[f"{app}-tracking-validation"]) == {"tracking.raw"}
    assert set(lags[f"{app}-tracking-sink"]) == {"tracking.events"}


def test_every_role_beats_and_dead_letters_are_counted(server: ServeProcess) -> None:
    """What deploy/prometheus/alerts.yml watches: each role's heartbeat (RoleDown) is
    recent, and a poison command moves the dead-letter counter (DeadLetters)."""
    samples = scrape(server)
    now = time.time()
    for role in ("api", "commands", "sinks", "validation"):
        beat = max(
            (v for (n, ls), v in samples.items()
             if n == "streamfold_role_heartbeat_seconds" and ("role", role) in ls),
            default=0.0,
        )  # fmt: skip
        assert now - beat < 30, f"{role}: last heartbeat {now - beat:.0f} s ago"

    producer = Producer({"bootstrap.servers": server.settings.kafka_bootstrap})
    producer.produce(USER_SPEC.commands_topic, value=b"{not a command", key=b"poison")
    producer.flush(10)
    grown(
        server, samples,
        lambda delta: delta("streamfold_dead_letters_total", topic=USER_SPEC.dlq_topic) >= 1,
    )  # fmt: skip
