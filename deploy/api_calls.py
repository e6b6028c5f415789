"""Calling the public API from a loader (``load-social``, ``load-identity``): a bounded
number of requests at a time, 429/503 waited out, every outcome counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
from rich.progress import Progress

RETRIES = 30


class ApiCalls:
    """``concurrency`` requests at a time against ``base_url``; ``outcomes`` counts
    ``"<what>: ok"`` and ``"<what>: <status> <problem type>"``."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        self.gate = asyncio.Semaphore(concurrency)
        self.outcomes: Counter[str] = Counter()
        self.client = httpx.AsyncClient(base_url=base_url, timeout=120)

    async def _call(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for _ in range(RETRIES):
            async with self.gate:
                response = await self.client.request(method, url, **kwargs)
            if response.status_code not in (429, 503):
                break
            # the login throttle (per client address) answers a burst of sign-ins with
            # 429, a store restarting with 503; both say when to come back
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        if response.status_code < 300:
            self.outcomes[f"{what}: ok"] += 1
        else:
            kind = response.json().get("type", "").rsplit("/", 1)[-1]
            self.outcomes[f"{what}: {response.status_code} {kind}"] += 1
        return response

    async def _each(self, progress: Progress, label: str, jobs: list[Any]) -> None:
        task = progress.add_task(label, total=len(jobs))

        async def run(job: Any) -> None:
            await job
            progress.advance(task)

        await asyncio.gather(*(run(j) for j in jobs))
