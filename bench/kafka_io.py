"""Kafka helpers the benches share: fill a topic, read a topic to its end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, Producer

from connectors.kafka import base_config


def fill(
    bootstrap: str,
    topic: str,
    count: int,
    make: Callable[[int], tuple[bytes, bytes]],
    config: Mapping[str, Any] | None = None,
) -> float:
    """Produce ``count`` records, ``make(i)`` giving the i-th (key, value), and wait for
    every delivery; ``config``: librdkafka settings over the defaults (linger 50 ms, lz4).
    Returns ``time.perf_counter()`` of the first produce. Raises ``SystemExit`` if some
    record was not delivered within 120 s."""
    producer = Producer({**base_config(bootstrap), "linger.ms": 50, "compression.type": "lz4",
                         "queue.buffering.max.messages": 500_000, **(config or {})})  # fmt: skip
    started = time.perf_counter()
    for i in range(count):
        key, value = make(i)
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise SystemExit(f"{topic}: not every record was delivered")
    return started


def read(bootstrap: str, topic: str, total: int, timeout_s: float = 600) -> tuple[float, float]:
    """Read ``topic`` from its start with a new group, decoding nothing, until ``total``
    records are seen: ``time.perf_counter()`` when the first and the last batch came.
    Raises ``SystemExit`` after ``timeout_s``."""
    consumer = Consumer({**base_config(bootstrap), "group.id": f"bench-read-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topic])
    seen, first, deadline = 0, None, time.monotonic() + timeout_s
    try:
        while seen < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"{topic}: {seen} of {total} records after {timeout_s} s")
            batch = consumer.consume(5000, 0.5)
            if batch and first is None:
                first = time.perf_counter()
            seen += sum(1 for m in batch if m.error() is None)
        last = time.perf_counter()
        return (first or last), last
    finally:
        consumer.close()
