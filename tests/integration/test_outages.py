"""A store that does not answer: bounded waits and a 503 that says retry, never a hang.

Real clients aimed at ports where nothing listens (no mock stands in for Kafka or Redis).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from api.app import create_api
from api.deps import Services
from connectors.exceptions import KafkaDeliveryError
from connectors.ratelimit import Limit
from connectors.redis import open_redis
from deploy.processes import free_port
from pipeline.common.settings import Settings
from pipeline.domain.partners.commands import CreatePartner
from pipeline.edge.ingest import Ingest
from pipeline.projections.partner_keys.lookups import KeyResolver
from pipeline.write.command_bus import CommandBus
from pipeline.write.routing import ClaimKeys

pytestmark = pytest.mark.integration


async def test_a_command_on_a_dead_broker_fails_within_its_timeout_and_leaves_no_waiter() -> None:
    bus = CommandBus(
        f"127.0.0.1:{free_port()}",
        client_id="outage-test",
        timeout_s=1.0,
        claim_keys=ClaimKeys(b"k" * 32),
    )
    command = CreatePartner(
        command_id=str(uuid.uuid4()),
        aggregate_id=str(uuid.uuid4()),
        issued_at=datetime.now(UTC),
        name="p",
        email="ops@example.org",
        contact_person=None,
        max_systems=1,
    )
    started = time.monotonic()
    try:
        with pytest.raises(KafkaDeliveryError):
            await bus.submit(command)  # librdkafka's default would wait 300 s
        # librdkafka scans for timed-out messages about once a second
        assert time.monotonic() - started < 1.0 + 1.5
        assert bus.waiter.waiting == 0
    finally:
        bus.producer.close(timeout_s=0)


async def test_an_unreachable_redis_is_a_503_with_retry_after() -> None:
    redis = open_redis(f"redis://127.0.0.1:{free_port()}/0")
    settings = Settings(env="test", jwt_secret="s" * 32)
    keys = KeyResolver(redis)
    # the edge with the key read model of that Redis; nothing past the key is reached
    ingest = Ingest(
        None, None, recorder=None, keys=keys,  # type: ignore[arg-type]
        per_system=Limit(1, 1000), per_partner=Limit(1, 1000),
        max_body_bytes=settings.max_body_bytes,
    )  # fmt: skip
    services = Services(
        settings=settings,
        clickhouse=None,  # type: ignore[arg-type]
        redis=redis,
        bus=None,  # type: ignore[arg-type]
        keys=keys,
        ingest=ingest,
    )
    transport = httpx.ASGITransport(app=create_api(services))
    started = time.monotonic()
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/v1/track",
            json={"event": "e", "user_id": "u"},
            headers={"Authorization": "Bearer sk_live_" + "a" * 43},
        )
    await redis.aclose()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "/problems/unavailable"
    assert "127.0.0.1" not in response.text  # no driver internals in the answer
    assert time.monotonic() - started < 5
