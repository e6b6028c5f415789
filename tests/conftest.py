"""Session fixtures: real Kafka and Redis, started once; a real ``streamfold serve``.

``STREAMFOLD_TEST_SERVICES=local`` (default) starts the broker from Maven Central jars and
Debian's redis-server through ``deploy.localstack``; ``=containers`` uses testcontainers
(needs a Docker engine; not available on the build machines). ClickHouse is the embedded
chdb engine either way, owned by the serve process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import Endpoints, ServeProcess, admin_token


def _local(home: Path) -> Iterator[Endpoints]:
    from deploy.localstack import LocalStack

    stack = LocalStack.start(home)
    try:
        yield Endpoints(kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url)
    finally:
        stack.stop()


def _containers() -> Iterator[Endpoints]:  # pragma: no cover - needs Docker
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka,
        RedisContainer("redis:7") as redis,
    ):
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Endpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(), redis_url=f"redis://{host}:{port}/0"
        )


@pytest.fixture(scope="session")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    mode = os.environ.get("STREAMFOLD_TEST_SERVICES", "local")
    if mode == "containers":
        yield from _containers()
    elif mode == "local":
        yield from _local(tmp_path_factory.mktemp("stack"))
    else:
        raise pytest.UsageError(f"STREAMFOLD_TEST_SERVICES={mode!r}: use local or containers")


WEBHOOK_SECRETS = '{"crm": "crm-webhook-secret-1"}'
"""The inbound webhook's subscriptions on the session's server (tests/e2e/test_webhook.py)."""


@pytest.fixture(scope="session")
def server(
    endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One ``streamfold serve`` for the session, with an admin created through Kafka."""
    # a celebrity at 3 followers, not 10,000: tests/e2e/test_social.py; every test
    # registers from 127.0.0.1, past the registration throttle's 30 an hour
    proc = ServeProcess(
        endpoints, tmp_path_factory.mktemp("serve"), timelines__celebrity_followers="3",
        register_per_address="10000", webhook_secrets=WEBHOOK_SECRETS,
    )  # fmt: skip
    proc.start()
    try:
        proc.create_admin()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def admin(server: ServeProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the API with an admin bearer token."""
    token = admin_token(server)
    with httpx.Client(
        base_url=server.settings.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client
