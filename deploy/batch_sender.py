"""Sending SDK events through the public ingestion API (``POST /v1/batch``), in batches
cut by count and body size, with retries for what a retry can fix."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

# Below the API's 1 MiB body limit with room for the envelope; batches are cut by size too.
MAX_BODY_BYTES = 900_000
_RETRY_STATUSES = frozenset({502, 503, 504})


def _batches(encoded: list[str], batch_size: int, max_body_bytes: int) -> list[list[str]]:
    """Cut JSON-encoded events into batches of at most ``batch_size`` events whose request
    body (``{"batch":[...]}``) stays within ``max_body_bytes``."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = len('{"batch":[]}')
    for item in encoded:
        item_size = len(item.encode()) + 1  # the comma
        if current and (len(current) >= batch_size or size + item_size > max_body_bytes):
            batches.append(current)
            current, size = [], len('{"batch":[]}')
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches


class _Retry(Exception):
    """A try that a later one may fix; ``after_s`` is the server's Retry-After, if any."""

    def __init__(self, what: str, after_s: float | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.after_s = after_s


# 0.5, 1, 2, 4, 8, 10, 10 ... s, each plus up to 0.5 s of jitter
_BACKOFF = wait_exponential_jitter(initial=0.5, max=10.0, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    """The server's Retry-After when it gave one (a 429), else the backoff."""
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, _Retry) and error.after_s is not None:
        return error.after_s
    return float(_BACKOFF(state))


async def _post_once(
    client: httpx.AsyncClient, body: bytes, events: int, outcomes: Counter[str]
) -> None:
    """One try: count the answer's per-event outcomes (200) or the refusal of the whole
    batch; raise ``_Retry`` for a transport error, a 429 or a 502/503/504."""
    try:
        response = await client.post("/v1/batch", content=body)
    except httpx.TransportError as exc:
        raise _Retry(type(exc).__name__) from exc
    if response.status_code == 200:
        for result in response.json()["results"]:
            outcome = result["status"]
            outcomes["accepted" if outcome == "accepted" else result.get("reason", outcome)] += 1
        return
    last = f"http {response.status_code} {_problem(response)}"
    if response.status_code == 429:
        raise _Retry(last, _retry_after(response))
    if response.status_code in _RETRY_STATUSES:
        raise _Retry(last)
    outcomes[last] += events  # not retryable: the batch is refused


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.1), 60.0)
    except ValueError:
        return None


def _problem(response: httpx.Response) -> str:
    try:
        return str(response.json().get("type", ""))
    except ValueError:
        return response.text[:100]


async def send_events(
    base_url: str,
    api_key: str,
    events: Iterable[dict[str, Any]],
    *,
    batch_size: int = 500,
    concurrency: int = 4,
    progress_label: str = "sending events",
    max_tries: int = 10,
    max_body_bytes: int = MAX_BODY_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Counter[str]:
    """POST ``events`` to ``{base_url}/v1/batch`` with ``api_key``, ``concurrency`` requests
    at a time, showing a progress bar (events sent of total).

    A 429 is retried after its Retry-After (seconds, capped at 60); 502/503/504 and
    connection errors after an exponential backoff; at most ``max_tries`` tries per batch.
    Returns outcome -> events: ``accepted``, the API's per-event reason (``malformed``,
    ``too_large``, ``missing_id``), ``http <status> <problem type>`` for a batch refused
    outright, or ``gave up: <last error>`` once the tries are used up. Never raises for
    HTTP problems (they are counted); an event too large for a body on its own is sent
    alone and counted from the answer. ``transport``: httpx's, for tests.
    """
    encoded = [orjson.dumps(e).decode() for e in events]
    batches = _batches(encoded, batch_size, max_body_bytes)
    outcomes: Counter[str] = Counter()
    pending = iter(batches)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("events"), TimeElapsedColumn())  # fmt: skip
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, transport=transport
    ) as client:
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(progress_label, total=len(encoded))

            async def post(batch: list[str]) -> None:
                body = ('{"batch":[' + ",".join(batch) + "]}").encode()
                retrying = AsyncRetrying(
                    stop=stop_after_attempt(max_tries), wait=_wait,
                    retry=retry_if_exception_type(_Retry), reraise=True,
                )  # fmt: skip
                try:
                    async for attempt in retrying:
                        with attempt:
                            await _post_once(client, body, len(batch), outcomes)
                except _Retry as exc:
                    outcomes[f"gave up: {exc.what}"] += len(batch)

            async def worker() -> None:
                # One shared iterator: each worker takes the next batch when it is free.
                for batch in pending:
                    await post(batch)
                    progress.advance(task, len(batch))

            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return outcomes
