"""Request bodies are counted as they stream: a chunked body over the limit is refused at
the limit, before authentication or parsing, whatever the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_api
from api.deps import Services
from pipeline.common.settings import Settings

LIMIT = 64 * 1024
CHUNK = b"x" * 16 * 1024


def app() -> Any:
    # Nothing behind the routes is reached: the body is refused first.
    settings = Settings(env="test", max_body_bytes=LIMIT, jwt_secret="s" * 32)
    services = Services(
        settings=settings, clickhouse=None, redis=None, bus=None, keys=None, ingest=None
    )  # type: ignore[arg-type]
    return create_api(services)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/admin/sql", "application/json"),  # no token either
        ("/api/auth/token", "application/x-www-form-urlencoded"),
        ("/api/admin/users", "application/json"),
    ],
)
async def test_a_chunked_body_over_the_limit_is_a_413_read_no_further(
    path: str, content_type: str
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(8 * 1024 * 1024 // len(CHUNK)):  # 8 MiB offered
            sent += len(CHUNK)
            yield CHUNK

    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(path, content=body(), headers={"content-type": content_type})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/too-large"
    assert sent <= LIMIT + 2 * len(CHUNK), f"read {sent} bytes past a {LIMIT}-byte limit"


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/api/admin/sql", content=b"{}" + b" " * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/too-large"
