"""The local stack really starts Kafka and Redis, serves clients, is reusable and stops."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.localstack import LocalStack
from deploy.processes import pid_alive, port_open

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    home: Path = tmp_path_factory.mktemp("localstack")
    started = LocalStack.start(home)
    try:
        yield started
    finally:
        started.stop()


TOPIC = f"localstack-{uuid.uuid4().hex[:8]}"


def test_kafka_round_trip(stack: LocalStack) -> None:
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    # auto.create.topics.enable=false on the broker: topics must be created explicitly.
    for future in admin.create_topics([NewTopic(TOPIC, num_partitions=1)]).values():
        future.result(timeout=30)

    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "acks": "all"})
    producer.produce(TOPIC, key=b"k", value=b"hello")
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": f"g-{TOPIC}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([TOPIC])
        deadline = time.monotonic() + 30
        msg = None
        while msg is None and time.monotonic() < deadline:
            polled = consumer.poll(1.0)
            if polled is not None and polled.error() is None:
                msg = polled
        assert msg is not None, "no message consumed within 30 s"
        assert (msg.key(), msg.value()) == (b"k", b"hello")
    finally:
        consumer.close()


def test_redis(stack: LocalStack) -> None:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        assert client.ping()
        client.set("localstack:key", "value")
        assert client.get("localstack:key") == b"value"
    finally:
        client.close()


def test_start_again_reuses_running_services(stack: LocalStack) -> None:
    again = LocalStack.start(stack.home)
    assert again.kafka == stack.kafka
    assert again.redis == stack.redis


def test_stop_ends_both_processes(stack: LocalStack) -> None:
    assert stack.kafka is not None and stack.redis is not None
    kafka, redis_proc = stack.kafka, stack.redis
    stack.stop()
    assert not pid_alive(kafka.pid)
    assert not pid_alive(redis_proc.pid)
    assert not port_open("127.0.0.1", kafka.port)
    assert not port_open("127.0.0.1", redis_proc.port)
    assert not (stack.home / "pids" / "kafka.json").exists()
    assert not (stack.home / "pids" / "redis.json").exists()


def test_restart_keeps_data(stack: LocalStack) -> None:
    """`up` after `down` on the same home: same cluster, topic and Redis key survive."""
    again = LocalStack.start(stack.home)
    try:
        admin = AdminClient({"bootstrap.servers": again.kafka_bootstrap})
        assert TOPIC in admin.list_topics(timeout=10).topics
        client = redis.Redis.from_url(again.redis_url)
        try:
            assert client.get("localstack:key") == b"value"
        finally:
            client.close()
    finally:
        again.stop()
