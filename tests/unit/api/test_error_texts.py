"""Public answers never carry internal error text (issue 7, section 4): /readyz names
what failed and logs why; the ingest routes' Kafka failure says retry, not the driver's
message. (Analyst SQL errors: ``tests/unit/connectors/test_analyst_sql.py``, which keeps
ClickHouse's syntax-error position and error name but never its text.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog

from api.app import create_api
from api.deps import Services
from api.routes import health
from pipeline.common.settings import Settings

SECRET = "Traceback /srv/streamfold/.venv/lib/redis/connection.py password=hunter2"


class Down:
    """A store whose every call raises an error carrying internal text."""

    async def ping(self) -> Any:
        raise RuntimeError(SECRET)


def _kafka_down(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


async def test_readyz_names_the_failed_checks_and_logs_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("group_positions", "consumer_lag"):  # the Kafka probe's helper
        if hasattr(health, name):
            monkeypatch.setattr(health, name, _kafka_down)
    settings = Settings(env="test", jwt_secret="s" * 32)
    services = Services(
        settings=settings, clickhouse=Down(), redis=Down(), bus=None, keys=None, ingest=None
    )  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_api(services))
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/not-ready"
    assert {body["checks"][k] for k in ("kafka", "redis", "clickhouse")} == {"failed"}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert ".py" not in response.text and "RuntimeError" not in response.text
    logged = [e for e in logs if e["event"] == "readiness check failed"]
    assert {e["check"] for e in logged} == {"kafka", "redis", "clickhouse"}
    assert all("hunter2" in e["error"] for e in logged)  # the operator still learns why
