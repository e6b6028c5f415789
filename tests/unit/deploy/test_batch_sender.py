"""The loader's retries (deploy/batch_sender.py), against httpx's mock transport: which
answers are retried, after how long, and how each batch is counted."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx

from deploy.batch_sender import send_events

EVENTS = [{"event": "page_view", "anonymous_id": f"a{i}", "properties": {}} for i in range(3)]


def accepted(request: httpx.Request) -> httpx.Response:
    batch = json.loads(request.content)["batch"]
    results = [{"index": i, "status": "accepted"} for i in range(len(batch))]
    return httpx.Response(200, json={"success": True, "results": results})


def answers(
    *responses: Callable[[httpx.Request], httpx.Response],
) -> tuple[list, httpx.MockTransport]:
    calls: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return responses[min(len(calls), len(responses)) - 1](request)

    return calls, httpx.MockTransport(handle)


def send(transport: httpx.MockTransport, **options: int) -> dict[str, int]:
    return dict(
        asyncio.run(send_events("http://api", "sk_live_x", EVENTS, transport=transport, **options))
    )


def test_a_429_waits_its_retry_after_and_a_503_is_retried() -> None:
    limited = lambda _: httpx.Response(429, headers={"Retry-After": "0.3"}, json={"type": "t"})  # noqa: E731
    down = lambda _: httpx.Response(503, json={"type": "/problems/kafka-unavailable"})  # noqa: E731
    calls, transport = answers(limited, down, accepted)
    assert send(transport) == {"accepted": 3}
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.29  # the server's Retry-After, not the backoff


def test_a_refused_batch_is_counted_once_and_not_retried() -> None:
    bad = lambda _: httpx.Response(400, json={"type": "/problems/malformed"})  # noqa: E731
    calls, transport = answers(bad, accepted)
    assert send(transport) == {"http 400 /problems/malformed": 3}
    assert len(calls) == 1


def test_tries_run_out_and_the_batch_is_given_up_with_the_last_error() -> None:
    down = lambda _: httpx.Response(502, json={"type": "/problems/x"})  # noqa: E731
    calls, transport = answers(down)
    assert send(transport, max_tries=2) == {"gave up: http 502 /problems/x": 3}
    assert len(calls) == 2
