"""Prometheus metrics of every role, and their exposition (``GET /metrics``).

One registry per process, written by prometheus-client. Under ``streamfold serve`` the
supervisor gives every child the same ``PROMETHEUS_MULTIPROC_DIR`` (``<home>/run/metrics``,
emptied at start), so each process writes its values to files there and any API worker
answers ``/metrics`` for all of them: the API workers share one port, and a scrape that
reached one worker's own registry would see a random slice. A role deployed on its own
(``streamfold worker --role ...`` with ``STREAMFOLD_METRICS_PORT``) serves its own
registry instead (:func:`serve_port`).

Names follow Prometheus conventions (base units: seconds, rows, records; ``_total`` for
counters). What each one counts is in its help text; ``deploy/grafana/streamfold.json``
draws them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Every name here is a classic one, so the text is the 0.0.4 format, which every Prometheus
# (2.x included) and Grafana Agent reads; 1.0.0 only adds escaping for UTF-8 names.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Latencies here run from a Redis round trip (~0.1 ms) to a 50k-row insert (seconds).
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_RECORDS = (1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000)

HTTP_REQUESTS = Counter(
    "streamfold_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "streamfold_http_request_duration_seconds",
    "Time from a request's arrival to its response's last byte, s.",
    ["route", "method"],
    buckets=_SECONDS,
)
TRACKING_EVENTS = Counter(
    "streamfold_tracking_events_total",
    "Tracking events by stage (ingest: the API's decision on each event of a request; "
    "validation: against the partner's structures, at the API for what it records there, "
    "else in the validation consumer) and outcome; reason is empty when "
    "accepted, else the rejection's reason.",
    ["stage", "outcome", "reason"],
)
EDGE_PATH = Counter(
    "streamfold_edge_requests_total",
    "Ingestion requests by the path that decoded them: compiled (the Rust core) or python "
    "(core not built, or a request it leaves to the Python path).",
    ["path"],
)
PRODUCE_SECONDS = Histogram(
    "streamfold_kafka_produce_seconds",
    "From the first record of a group produced to the last delivery report (acks=all), s.",
    ["client"],
    buckets=_SECONDS,
)
BATCH_RECORDS = Histogram(
    "streamfold_consumer_batch_records",
    "Records per batch a consumer handled, by consumer (its group; a Faust agent: its name).",
    ["group"],
    buckets=_RECORDS,
)
BATCH_SECONDS = Histogram(
    "streamfold_consumer_batch_seconds",
    "Time a consumer spent handling one batch (store writes and produced acks included), "
    "by consumer as above, s.",
    ["group"],
    buckets=_SECONDS,
)
CONSUMER_LAG = Gauge(
    "streamfold_consumer_lag_records",
    "Records behind the partition's end (high watermark minus position), per consumer group "
    "and partition; the newest value from whichever process reported it.",
    ["group", "topic", "partition"],
    multiprocess_mode="mostrecent",
)
INSERT_ROWS = Counter(
    "streamfold_clickhouse_insert_rows_total",
    "Rows sent to ClickHouse inserts, by table (tracking_events: the staged path counts a "
    "batch's distinct events, some of which ClickHouse may find stored and skip).",
    ["table"],
)
INSERT_SECONDS = Histogram(
    "streamfold_clickhouse_insert_seconds",
    "Time one ClickHouse insert took, by table, s.",
    ["table"],
    buckets=_SECONDS,
)

DEAD_LETTERS = Counter(
    "streamfold_dead_letters",
    "Records sent to a dead-letter topic, by topic and the agent that refused them.",
    ["topic", "agent"],
)
LIVE_SUBSCRIBERS = Gauge(
    "streamfold_live_subscribers",
    "Open live connections (SSE and WebSocket) of the API processes, by Redis stream.",
    ["stream"],
    multiprocess_mode="livesum",
)
ROLE_HEARTBEAT = Gauge(
    "streamfold_role_heartbeat_seconds",
    "Unix time, s, of a role process's last heartbeat (every HEARTBEAT_S while its event "
    "loop runs): a role that died or hangs stops moving it.",
    ["role"],
    multiprocess_mode="max",
)
HEARTBEAT_S = 5.0


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe the block's wall time (s) in ``histogram`` with ``labels``, also when it
    raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def exposition() -> bytes:
    """Every metric of this process, or of every process sharing the multiprocess
    directory, in the Prometheus text format (``CONTENT_TYPE``)."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_dead(pid: int) -> None:
    """Drop a dead process's live gauges from the shared directory (no-op without one)."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)


def serve_port(port: int) -> None:
    """Serve this process's registry on ``port`` (0: do nothing), for a role deployed on
    its own; under ``streamfold serve`` the API's ``/metrics`` covers every child."""
    if port and not os.environ.get(MULTIPROC_ENV):
        start_http_server(port)
