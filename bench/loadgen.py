"""Load generator for ``POST /v1/batch``, run as its own process by ``bench/ingest.py``.

C concurrent connections (one ``httpx.AsyncClient``) each post batches of B realistic
``page_view`` events (~300 bytes of JSON each, unique message ids, a few hundred distinct
anonymous ids) back to back for ``--seconds`` seconds. Bodies are assembled from
pre-serialised fragments so the client spends little CPU per event.

Prints one JSON line on stdout: events accepted, events/s (accepted / wall seconds from the
first post to the last answer), request latency p50/p99 (ms), status codes, and the wall
clock (``time.time()``, s) of the first post and of the last answer, so the parent can
line the run up with what it sees in ClickHouse.

With ``--rate R`` the batches are paced to R events/s in all (a batch starts no earlier
than its share of the schedule), else they go back to back.

Usage: python bench/loadgen.py --base URL --key sk_live_... --batch 100 [--seconds 8]
    [--concurrency 8] [--anonymous 300] [--prefix run1-b100] [--rate 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import percentiles

PAGES = [
    ("/", "Home"),
    ("/pricing", "Pricing"),
    ("/docs/getting-started", "Getting started"),
    ("/docs/api/tracking", "Tracking API"),
    ("/blog/event-sourcing-on-kafka", "Event sourcing on Kafka"),
    ("/blog/cqrs-read-models", "CQRS read models"),
    ("/careers", "Careers"),
    ("/contact", "Contact us"),
    ("/signup", "Sign up"),
    ("/login", "Log in"),
]
REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "", "https://t.co/x"]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0",
    "Mozilla/5.0 (Macintosh) Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4)",
]


class EventFactory:
    """``page_view`` SDK events as JSON text; message ids are ``<prefix>-<counter>``.

    ``tail`` fragments (everything after the message id) are pre-serialised, so one event
    costs a string concatenation; the timestamp is refreshed once per batch.
    """

    def __init__(self, prefix: str, anonymous: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.prefix = prefix
        self.counter = 0
        self.fragments: list[tuple[str, str]] = []
        for i in range(max(anonymous, 1) * 2):
            path, title = PAGES[i % len(PAGES)]
            properties = {
                "path": path,
                "title": title,
                "url": f"https://www.example.com{path}",
                "referrer": rng.choice(REFERRERS),
            }
            context = {
                "user_agent": rng.choice(AGENTS),
                "locale": rng.choice(["en-US", "de-DE", "fr-FR"]),
            }
            head = f'","anonymous_id":"anon-{i % max(anonymous, 1):05d}","timestamp":"'
            tail = (
                f'","properties":{json.dumps(properties, separators=(",", ":"))}'
                f',"context":{json.dumps(context, separators=(",", ":"))}}}'
            )
            self.fragments.append((head, tail))
        self.rng = rng

    def event(self, timestamp: str) -> str:
        self.counter += 1
        head, tail = self.fragments[self.counter % len(self.fragments)]
        return (
            '{"event":"page_view","message_id":"'
            f"{self.prefix}-{self.counter:010d}{head}{timestamp}{tail}"
        )

    def batch_body(self, size: int) -> bytes:
        """``{"batch": [...]}`` with ``size`` fresh events, as UTF-8 bytes."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return ('{"batch":[' + ",".join(self.event(stamp) for _ in range(size)) + "]}").encode()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Post for ``args.seconds`` s with ``args.concurrency`` workers; returns the summary."""
    factory = EventFactory(args.prefix, args.anonymous)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    accepted = 0
    sent = 0
    first_post: float | None = None
    last_done = 0.0
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=args.base, headers=headers, timeout=60, limits=limits
    ) as client:
        deadline = time.perf_counter() + args.seconds
        t0 = time.perf_counter()
        scheduled = 0  # events given a start time so far (paced runs)

        async def worker() -> None:
            nonlocal accepted, sent, first_post, last_done, scheduled
            while time.perf_counter() < deadline:
                if args.rate > 0:  # the next batch starts when the rate allows it
                    start_at = t0 + scheduled / args.rate
                    scheduled += args.batch
                    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
                    if time.perf_counter() >= deadline:
                        break
                body = factory.batch_body(args.batch)
                if first_post is None:
                    first_post = time.time()
                start = time.perf_counter()
                response = await client.post("/v1/batch", content=body)
                latencies.append((time.perf_counter() - start) * 1000)
                last_done = time.time()
                codes[str(response.status_code)] = codes.get(str(response.status_code), 0) + 1
                sent += args.batch
                if response.status_code == 200:
                    accepted += int(response.json()["accepted"])

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    return {
        "batch": args.batch,
        "concurrency": args.concurrency,
        "seconds": round(wall, 3),
        "requests": len(latencies),
        "events_sent": sent,
        "events_accepted": accepted,
        "events_per_s": round(accepted / wall, 1),
        "latency_ms": percentiles(latencies),
        "status_codes": codes,
        "t_first_post": first_post,
        "t_last_done": last_done,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="API base URL")
    parser.add_argument("--key", required=True, help="system API key (sk_live_...)")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--seconds", type=float, default=8.0, help="posting time, s")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent connections")
    parser.add_argument("--anonymous", type=int, default=300, help="distinct anonymous ids")
    parser.add_argument("--prefix", default="bench", help="message id prefix (unique per run)")
    parser.add_argument("--rate", type=float, default=0, help="events/s to pace at (0: flat out)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
