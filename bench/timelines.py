"""The Redis timeline projection (issue 10, section 6): fan-out, feed reads, live delivery.

Everything goes through the project's own code: envelopes come from the real write side
(``handle`` with the chirp and follow aggregates), the projection is
``pipeline.projections.timelines.TimelineHandler`` called per batch the way the projection
runner calls it (it sends its Lua scripts ``WRITE_CHUNK`` at a time itself; the runner's
MULTI then holds only the checkpoint, so no per-batch EXEC time is reported), feeds are
read with ``timelines.feed`` and live feeds with ``api.live.ChirpFeeds``. Not included: Kafka,
Avro decoding, the runner's checkpoint (one HSET per batch).

Data (read at run time, never copied into the repo): the follower network
``../shared/data/social/bofa_careers.json`` (13,688 users, 68,328 edges; an edge
``[src, trg]`` is taken as "src follows trg", which gives a most-followed user 567
followers and a user following 3,469), node ids mapped to UUIDs with uuid5; chirp texts
from ``../shared/data/social/tweets_emoji_train.txt`` (blank lines and texts over 280
characters skipped). Policy: ``TimelinePolicy(cap=800, backfill=100,
celebrity_followers=600, hysteresis=0.1)``: the line sits just above the network's
most-followed user, so no network user is a celebrity and the 100 synthetic ones are.

Each run, on a fresh ``redis-server`` (Debian's, ``--save '' --appendonly no``, a temp
dir, a free port), in this order:

1. network: every follow through the handler, batches of ``--batch``: follows applied/s
   (handler + EXEC; no chirps exist yet, so no backfill);
2. fan-out: ``--chirps`` chirps (authors drawn with probability proportional to their
   follower count: ~57 followers per chirp), live (``replaying`` False: each also XADDs
   to the live stream): chirps projected/s and timeline writes/s (the fanned-out counts
   the post script returns through ``pipe.execute()``), and the EXEC time per batch (while
   a MULTI runs, Redis serves nobody else). Same-run ceiling: the same ZADD +
   ZREMRANGEBYRANK pairs on the same homes (keys in database 1), RESP pre-encoded outside
   the timing and written to a raw socket in one MULTI per batch: what Redis does for
   these writes without Lua and without a Python client. Also the shares of the wall time
   spent in the handler (Python, queueing) and in the post script (Redis, ``INFO
   commandstats``);
   memory: ``INFO memory`` used_memory after minus before step 2, divided by the number of
   home-timeline entries (sum of ZCARD ``tl:home:*``): includes the chirp hashes (text),
   the authors' ``tl:own`` sets and the live stream (capped at ~10,000 entries), not only
   the homes; a second figure is the homes alone (sum of ``MEMORY USAGE`` of every
   ``tl:home:*`` key / entries);
3. feed reads: 100 synthetic celebrities (600 synthetic fans each, then 50 chirps each,
   pulled at read time), and 3 groups of ``--readers`` readers following 100 regular
   network authors (20 to 300 followers) plus 0, 10 or 100 celebrities. Feeds (first
   page, 20 items, one ``feed`` script call) read one at a time, round robin over the
   groups: first idle (``--idle-s``), then for ``--read-s`` while another process (the
   runner's place) posts chirps through the handler flat out (``--load-rate`` 0) or at a
   given rate: p50/p99 ms per group, client side (redis-py round trip included), and
   Redis's own time per feed call (``INFO commandstats``, idle);
4. live delivery: ``--subscribers`` subscribers (the network users who follow the most
   authors) on one ``ChirpFeeds`` (its own ``open_redis`` client, as the API; subscribed 50
   at a time: a burst of 200 exceeds redis-py's default pool of 100), chirps by
   authors drawn as in 2, ``--sse-batch`` per batch every ``--sse-interval`` s, live; latency
   from just before the batch's ``pipe.execute()`` to the item's receipt by each
   subscriber following the author: p50/p99 ms.

Units: rates per second of wall time on this machine (2 cores shared by Redis, the bench
and, in step 3, the load process); latencies in ms; memory in bytes per home entry.
Scale: scaled down to fit this machine: 20,000 chirps (~1.1 M timeline writes), not a
day's traffic; a run takes ~45 s and ``--runs 3`` ~2.5 min (envelopes made once, ~11 s).
Each figure is reported as the median, min and max over ``--runs`` runs; the envelopes are
made once (seeded: every run applies the same events) and the runs differ only by noise.

Usage: .venv/bin/python bench/timelines.py [--runs 3] [--chirps 20000] [--batch 500]
Prints a table; writes bench/results/local/timelines-<utc>.json (``bench.stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from api.live import ChirpFeeds  # noqa: E402
from bench.stats import percentiles, write_results  # noqa: E402
from connectors.redis import open_redis  # noqa: E402
from deploy import binaries  # noqa: E402
from deploy.localstack import wait_for_redis  # noqa: E402
from deploy.processes import free_port, spawn, stop_process  # noqa: E402
from pipeline.domain import chirps, follows  # noqa: E402
from pipeline.domain.handling import Snapshot, handle  # noqa: E402
from pipeline.domain.timeline_policy import TimelinePolicy  # noqa: E402
from pipeline.projections.projection import Context, Decoded  # noqa: E402
from pipeline.projections.timelines import Scripts, TimelineHandler, feed  # noqa: E402
from pipeline.write.aggregates import CHIRPS, FOLLOWS  # noqa: E402
from schemas.envelope import Envelope  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "social"
NETWORK = DATA / "bofa_careers.json"
TWEETS = DATA / "tweets_emoji_train.txt"
NAMESPACE = uuid.UUID("0b6f3c52-1d7e-5a4f-9e0c-7d2a5b8c4e10")  # bench ids, fixed
T0 = datetime(2026, 12, 1, tzinfo=UTC)
SEED = 10
CELEBRITIES = 100
CELEBRITY_CHIRPS = 50
GROUPS = (0, 10, 100)  # celebrities followed by each reader group
REGULAR_FOLLOWED = 100  # network authors each reader follows
REGULAR_FOLLOWERS = (20, 300)  # ...chosen among those with this many followers
FEED_LIMIT = 20
SUBSCRIBE_WAVE = 50


def user(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


# -- the data and the write side ------------------------------------------------------


@dataclass
class Network:
    users: list[str]
    edges: list[tuple[str, str]]  # (follower, followee)
    followers: dict[str, list[str]]
    following: dict[str, list[str]]


def load_network() -> Network:
    if not NETWORK.is_file() or not TWEETS.is_file():
        raise SystemExit(
            f"bench data missing: {NETWORK} and {TWEETS} are needed (the shared data "
            f"directory {DATA.parent} next to the repo)"
        )
    raw = json.loads(NETWORK.read_text())
    users = [user(f"bofa/{n}") for n in raw["labels"]]
    edges = [(user(f"bofa/{src}"), user(f"bofa/{trg}")) for src, trg in raw["edges"]]
    followers: dict[str, list[str]] = collections.defaultdict(list)
    following: dict[str, list[str]] = collections.defaultdict(list)
    for a, b in edges:  # "src follows trg"
        followers[b].append(a)
        following[a].append(b)
    return Network(users, edges, dict(followers), dict(following))


def load_texts() -> list[str]:
    texts = []
    for line in TWEETS.read_text(encoding="utf-8").splitlines():
        text = unicodedata.normalize("NFC", line.strip())
        if text and len(text) <= chirps.TEXT_MAX_CODE_POINTS:
            texts.append(text)
    return texts


class Writer:
    """Envelopes through the real write side: one command per new aggregate (a follow
    pair, a chirp), each 1 ms after the previous one."""

    def __init__(self) -> None:
        self.clock = itertools.count(1)

    def _fields(self, aggregate_id: str, actor: str) -> dict[str, Any]:
        n = next(self.clock)
        return {"command_id": str(uuid.uuid5(NAMESPACE, f"command/{n}")),
                "aggregate_id": aggregate_id, "actor": actor,
                "issued_at": T0 + timedelta(milliseconds=n)}  # fmt: skip

    def _one(self, spec: Any, command: Any) -> Envelope:
        outcome = handle(spec, Snapshot(state=None), command, producer="bench", window=1)
        assert outcome.result.status == "accepted", outcome.result
        (envelope,) = outcome.envelopes
        return envelope

    def follow(self, follower: str, followee: str) -> Envelope:
        fields = self._fields(follows.follow_id(follower, followee), follower)
        command = follows.FollowUser(**fields, follower_id=follower, followee_id=followee)
        return self._one(FOLLOWS.spec, command)

    def chirp(self, author: str, text: str) -> Envelope:
        n = next(self.clock)
        chirp_id = str(uuid.uuid5(NAMESPACE, f"chirp/{n}"))
        command = chirps.PostChirp(**self._fields(chirp_id, author), author_id=author, text=text)
        return self._one(CHIRPS.spec, command)


@dataclass
class Workload:
    """Every envelope of a run, made once per invocation."""

    network: list[Envelope]
    fanout: list[Envelope]
    celebrity_follows: list[Envelope]
    celebrity_chirps: list[Envelope]
    reader_follows: list[Envelope]
    load: list[Envelope]
    live: list[Envelope]
    groups: dict[int, list[str]]  # celebrities followed -> reader ids
    subscribers: list[str]
    expected_fanout: int  # sum over the fan-out chirps of their author's followers
    live_expected: dict[str, int]  # live chirp id -> subscribers following its author
    followers: dict[str, list[str]]
    celebrities: list[str] = field(default_factory=list)


def make_workload(args: argparse.Namespace, net: Network, texts: list[str]) -> Workload:
    rng = random.Random(SEED)
    w = Writer()
    authors = sorted(net.followers)
    weights = [len(net.followers[a]) for a in authors]

    def chirps_by_followers(n: int) -> list[Envelope]:
        return [w.chirp(a, rng.choice(texts)) for a in rng.choices(authors, weights, k=n)]

    network = [w.follow(a, b) for a, b in net.edges]
    fanout = chirps_by_followers(args.chirps)
    expected = sum(len(net.followers[e.data["author_id"]]) for e in fanout)

    line = args.celebrity_line
    celebrities = [user(f"celebrity/{i}") for i in range(CELEBRITIES)]
    fans = [user(f"fan/{i}") for i in range(line)]
    celebrity_follows = [w.follow(f, c) for c in celebrities for f in fans]
    celebrity_chirps = [w.chirp(c, rng.choice(texts)) for _ in range(CELEBRITY_CHIRPS)
                        for c in celebrities]  # fmt: skip

    low, high = REGULAR_FOLLOWERS
    regular = [a for a in authors if low <= len(net.followers[a]) <= high]
    groups: dict[int, list[str]] = {}
    reader_follows = []
    for k in GROUPS:
        groups[k] = [user(f"reader/{k}/{i}") for i in range(args.readers)]
        for reader in groups[k]:
            for followee in rng.sample(regular, REGULAR_FOLLOWED) + celebrities[:k]:
                reader_follows.append(w.follow(reader, followee))

    load = chirps_by_followers(args.load_chirps)
    subscribers = sorted(net.following, key=lambda u: -len(net.following[u]))[: args.subscribers]
    live = chirps_by_followers(args.sse_chirps)
    chosen = set(subscribers)
    live_expected = {
        e.data["chirp_id"]: sum(1 for f in net.followers[e.data["author_id"]] if f in chosen)
        for e in live
    }
    return Workload(network, fanout, celebrity_follows, celebrity_chirps, reader_follows, load,
                    live, groups, subscribers, expected, live_expected, net.followers,
                    celebrities)  # fmt: skip


# -- Redis ----------------------------------------------------------------------------


@dataclass
class Server:
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(home: Path) -> Server:
    """Debian's redis-server, no persistence (``deploy.localstack.start_redis`` turns the
    AOF on, which would be measured too), with deploy.processes' spawn and
    deploy.localstack's wait for its PING."""
    port = free_port()
    argv = [binaries.ensure_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(home), "--save", "", "--appendonly", "no",
            "--daemonize", "no"]  # fmt: skip
    log = home / "redis.log"
    proc = spawn(argv, log, cwd=home)
    wait_for_redis(proc, port, log, 20)
    return Server(proc.pid, port)


@dataclass
class Applied:
    results: list[Any]
    seconds: float
    handler_s: float
    exec_ms: list[float]


async def apply(
    redis: Redis,
    handler: TimelineHandler,
    envelopes: Sequence[Envelope],
    *,
    batch: int,
    replaying: bool,
    before_execute: Callable[[Sequence[Envelope]], None] | None = None,
) -> Applied:
    """The envelopes through the handler, ``batch`` per MULTI/EXEC, as the runner does."""
    results: list[Any] = []
    handler_s, exec_ms = 0.0, []
    started = time.perf_counter()
    fanned_before = handler.fanned_out
    for start in range(0, len(envelopes), batch):
        chunk = envelopes[start : start + batch]
        t0 = time.perf_counter()
        async with redis.pipeline(transaction=True) as pipe:
            ctx = Context("timelines", 1, {}, replaying, None, redis, pipe=pipe)  # type: ignore[arg-type]
            decoded = [Decoded(e, "bench", 0, start + i, None) for i, e in enumerate(chunk)]  # type: ignore[arg-type]
            failed = await handler(decoded, ctx)
            if failed:
                raise RuntimeError(f"the handler refused {len(failed)} records: {failed[0][1]}")
            t1 = time.perf_counter()
            if before_execute is not None:
                before_execute(chunk)
            await pipe.execute()
            t2 = time.perf_counter()
        handler_s += t1 - t0
        exec_ms.append((t2 - t1) * 1000)
    results.append(handler.fanned_out - fanned_before)
    return Applied(results, time.perf_counter() - started, handler_s, exec_ms)


def fanned(results: list[Any]) -> int:
    return sum(r for r in results if isinstance(r, int) and r > 0)


async def home_stats(redis: Redis) -> tuple[int, int, int]:
    """(home keys, entries in them, bytes the homes take by MEMORY USAGE)."""
    keys = [k async for k in redis.scan_iter(match="tl:home:*", count=2000)]
    entries = size = 0
    for start in range(0, len(keys), 2000):
        async with redis.pipeline(transaction=False) as pipe:
            for k in keys[start : start + 2000]:
                pipe.zcard(k)
                pipe.memory_usage(k, samples=0)
            out = await pipe.execute()
        entries += sum(out[0::2])
        size += sum(out[1::2])
    return len(keys), entries, size


async def server_usec(redis: Redis, command: str = "evalsha") -> tuple[int, int]:
    """(calls, microseconds) Redis spent in ``command`` since the last CONFIG RESETSTAT."""
    stats = (await redis.info("commandstats")).get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


async def used_memory(redis: Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


async def ceiling(port: int, w: Workload, *, batch: int, cap: int) -> tuple[int, float]:
    """(writes, seconds): the fan-out's ZADD + ZREMRANGEBYRANK pairs on ``tl:home:*`` of
    database 1, from a raw socket, one MULTI per ``batch`` chirps; encoding not timed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_resp(b"SELECT", b"1"))
    await writer.drain()
    assert await reader.readline() == b"+OK\r\n"
    zadd, trim = {}, {}
    for followers in w.followers.values():
        for f in followers:
            if f not in zadd:
                key = f"tl:home:{f}".encode()
                zadd[f] = b"*4\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n" % (len(key), key)
                trim[f] = _resp(b"ZREMRANGEBYRANK", key, b"0", b"%d" % (-cap - 1))
    writes, seconds = 0, 0.0
    for start in range(0, len(w.fanout), batch):
        parts, commands = [_resp(b"MULTI")], 0
        for e in w.fanout[start : start + batch]:
            ms = str(int(e.occurred_at.timestamp() * 1000)).encode()
            member = b"$%d\r\n%s\r\n$36\r\n%s\r\n" % (len(ms), ms, e.data["chirp_id"].encode())
            for f in w.followers[e.data["author_id"]]:
                parts += (zadd[f], member, trim[f])
                commands += 2
        parts.append(_resp(b"EXEC"))
        payload = b"".join(parts)
        lines_expected = 2 * commands + 2  # +OK, +QUEUED each, *n, one integer each
        t0 = time.perf_counter()
        writer.write(payload)
        got, lines = bytearray(), 0
        while lines < lines_expected:
            chunk = await reader.read(1 << 20)
            if not chunk:
                raise RuntimeError("redis closed the connection")
            got += chunk
            lines += chunk.count(b"\n")
        seconds += time.perf_counter() - t0
        if got.startswith(b"-") or b"\n-" in got:
            raise RuntimeError(f"redis refused a ceiling command: {bytes(got[:200])!r}")
        writes += commands // 2
    writer.close()
    return writes, seconds


# -- step 3: the load process -----------------------------------------------------------


def _event_loop() -> Callable[..., Any]:
    try:
        import uvloop

        return uvloop.run  # the API's and the runner's default loop (Settings.event_loop)
    except ImportError:
        return asyncio.run


def load_process(url: str, policy: dict[str, Any], envelopes: list[Envelope], batch: int,
                 rate: float, ready: Any, stop: Any, out: Any) -> None:  # fmt: skip
    """The runner's place in step 3: chirps through the handler until ``stop``."""

    async def run() -> dict[str, Any]:
        redis = open_redis(url)
        handler = TimelineHandler(TimelinePolicy(**policy), Scripts.on(redis))
        ready.set()
        posted = writes = 0
        exec_ms: list[float] = []
        started = time.perf_counter()
        while posted < len(envelopes) and not stop.is_set():
            chunk = envelopes[posted : posted + batch]
            applied = await apply(redis, handler, chunk, batch=batch, replaying=False)
            posted += len(chunk)
            writes += fanned(applied.results)
            exec_ms += applied.exec_ms
            if rate > 0:
                await asyncio.sleep(max(0.0, started + posted / rate - time.perf_counter()))
        seconds = time.perf_counter() - started
        await redis.aclose()
        return {"chirps": posted, "writes": writes, "seconds": seconds, "exec_ms": exec_ms,
                "exhausted": posted >= len(envelopes)}  # fmt: skip

    out.put(_event_loop()(run()))


async def read_feeds(scripts: Scripts, groups: dict[int, list[str]], seconds: float,
                     stop: Callable[[], bool] = lambda: False) -> dict[int, Any]:  # fmt: skip
    """Feeds, one at a time, round robin over the groups, for ``seconds``."""
    samples: dict[int, list[float]] = {k: [] for k in groups}
    items: dict[int, list[int]] = {k: [] for k in groups}
    deadline = time.perf_counter() + seconds
    for i in itertools.count():
        if time.perf_counter() >= deadline or stop():
            break
        k = GROUPS[i % len(GROUPS)]
        reader = groups[k][(i // len(GROUPS)) % len(groups[k])]
        t0 = time.perf_counter()
        page, _ = await feed(scripts, reader, limit=FEED_LIMIT, cursor=None)
        samples[k].append((time.perf_counter() - t0) * 1000)
        items[k].append(len(page))
    return {k: {**percentiles(samples[k]), "reads": len(samples[k]),
                "items": statistics.mean(items[k]) if items[k] else 0} for k in groups}  # fmt: skip


# -- step 4 -------------------------------------------------------------------------------


async def live_delivery(url: str, redis: Redis, handler: TimelineHandler, w: Workload,
                        args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    api_redis = open_redis(url)
    feeds = ChirpFeeds(api_redis)
    received: list[tuple[str, float]] = []
    readies = [asyncio.Event() for _ in w.subscribers]

    async def subscribe(user_id: str, ready: asyncio.Event) -> None:
        async for item in feeds.stream(user_id, None):
            if item.payload is None:
                ready.set()
            else:
                received.append((item.payload["id"], time.perf_counter()))

    # in waves: the API's client pool (redis-py's default, 100 connections) refuses a
    # burst of 200 subscriptions at once (MaxConnectionsError)
    tasks = []
    for start in range(0, len(w.subscribers), SUBSCRIBE_WAVE):
        wave = range(start, min(start + SUBSCRIBE_WAVE, len(w.subscribers)))
        tasks += [asyncio.create_task(subscribe(w.subscribers[i], readies[i])) for i in wave]
        await asyncio.wait_for(asyncio.gather(*(readies[i].wait() for i in wave)), 10)
    sent: dict[str, float] = {}

    def stamp(chunk: Sequence[Envelope]) -> None:
        now = time.perf_counter()
        for e in chunk:
            sent[e.data["chirp_id"]] = now

    for start in range(0, len(w.live), args.sse_batch):
        chunk = w.live[start : start + args.sse_batch]
        await apply(redis, handler, chunk, batch=args.sse_batch, replaying=False,
                    before_execute=stamp)  # fmt: skip
        await asyncio.sleep(args.sse_interval)
    expected = sum(w.live_expected.values())
    deadline = time.perf_counter() + 10
    while len(received) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    dropped = sum(1 for t in tasks if t.done())  # a dropped subscriber's stream ends
    for t in tasks:
        t.cancel()
    reader = getattr(feeds, "_reader", None)  # the per-process XREAD task: stop it now
    if reader is not None:
        reader.cancel()
    await asyncio.gather(*tasks, *([reader] if reader else []), return_exceptions=True)
    await api_redis.aclose()
    latencies = [(t - sent[cid]) * 1000 for cid, t in received]
    return {**percentiles(latencies), "delivered": len(received), "expected": expected,
            "dropped_subscribers": dropped}  # fmt: skip


# -- one run --------------------------------------------------------------------------------


def policy_of(args: argparse.Namespace) -> dict[str, Any]:
    return {"cap": 800, "backfill": 100, "celebrity_followers": args.celebrity_line,
            "hysteresis": 0.1}  # fmt: skip


async def one_run(args: argparse.Namespace, server: Server, w: Workload,
                  index: int) -> dict[str, Any]:  # fmt: skip
    policy = TimelinePolicy(**policy_of(args))
    redis = open_redis(server.url, timeout_s=60)  # one EXEC can take long: not a failure
    handler = TimelineHandler(policy, Scripts.on(redis))
    out: dict[str, Any] = {}

    def show(name: str) -> None:
        print(f"  run {index} {name}: {out[name]}", flush=True)

    # 1. the network
    applied = await apply(redis, handler, w.network, batch=args.batch, replaying=False)
    out["follows_per_s"] = round(len(w.network) / applied.seconds)
    show("follows_per_s")

    # 2. fan-out
    await redis.memory_purge()
    before = await used_memory(redis)
    await redis.config_resetstat()
    applied = await apply(redis, handler, w.fanout, batch=args.batch, replaying=False)
    _, script_usec = await server_usec(redis)
    writes = fanned(applied.results)
    if writes != w.expected_fanout:
        raise RuntimeError(f"fanned out {writes}, the network says {w.expected_fanout}")
    after = await used_memory(redis)
    keys, entries, home_bytes = await home_stats(redis)
    if await redis.scard("tl:celebrities"):
        raise RuntimeError("a network user became a celebrity: raise --celebrity-line")
    writes_s = writes / applied.seconds
    ceiling_writes, ceiling_s = await ceiling(server.port, w, batch=args.batch, cap=policy.cap)
    db1 = Redis.from_url(server.url.removesuffix("/0") + "/1", socket_timeout=60)
    await db1.flushdb()  # the ceiling's homes
    await db1.aclose()
    ceiling_rate = ceiling_writes / ceiling_s
    out["fanout"] = {
        "chirps_per_s": round(len(w.fanout) / applied.seconds),
        "writes_per_s": round(writes_s),
        "writes": writes,
        "ceiling_writes_per_s": round(ceiling_rate),
        "ratio_to_ceiling": round(writes_s / ceiling_rate, 3),
        "handler_share": round(applied.handler_s / applied.seconds, 3),
        "script_share": round(script_usec / 1e6 / applied.seconds, 3),
        "exec_ms": percentiles(applied.exec_ms) | {"max": round(max(applied.exec_ms), 1)},
        "home_keys": keys,
        "home_entries": entries,
        "bytes_per_entry_used_memory": round((after - before) / entries, 1),
        "bytes_per_entry_homes_only": round(home_bytes / entries, 1),
    }
    show("fanout")

    # 3. feed reads: celebrities, readers, then reads idle and under load
    for envelopes in (w.celebrity_follows, w.celebrity_chirps, w.reader_follows):
        await apply(redis, handler, envelopes, batch=args.batch, replaying=False)
    celebrities = await redis.scard("tl:celebrities")
    if celebrities != CELEBRITIES:
        raise RuntimeError(f"{celebrities} celebrities, expected {CELEBRITIES}")
    api_redis = open_redis(server.url)
    scripts = Scripts.on(api_redis)
    for readers in w.groups.values():  # scripts loaded, connections open
        for reader in readers:
            await feed(scripts, reader, limit=FEED_LIMIT, cursor=None)
    out["feed_idle"] = await read_feeds(scripts, w.groups, args.idle_s)
    for k, readers in w.groups.items():  # Redis's own time per feed call, group by group
        await redis.config_resetstat()
        for reader in readers * 2:
            await feed(scripts, reader, limit=FEED_LIMIT, cursor=None)
        calls, usec = await server_usec(redis)
        out["feed_idle"][k]["server_ms"] = round(usec / calls / 1000, 2)
    show("feed_idle")
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    load = ctx.Process(target=load_process, args=(server.url, policy_of(args), w.load,
                       args.batch, args.load_rate, ready, stop, results))  # fmt: skip
    load.start()
    if not await asyncio.to_thread(ready.wait, 60):
        load.kill()
        raise RuntimeError("the load process did not start")
    await asyncio.sleep(0.5)  # the first batch under way
    out["feed_loaded"] = await read_feeds(scripts, w.groups, args.read_s,
                                          stop=lambda: not load.is_alive())  # fmt: skip
    stop.set()
    stats = await asyncio.to_thread(results.get, True, 120)
    await asyncio.to_thread(load.join, 30)
    out["load"] = {
        "chirps_per_s": round(stats["chirps"] / stats["seconds"]),
        "writes_per_s": round(stats["writes"] / stats["seconds"]),
        "exec_ms": percentiles(stats["exec_ms"]) | {"max": round(max(stats["exec_ms"]), 1)},
        "ran_out_of_chirps": stats["exhausted"],
    }
    show("feed_loaded")
    show("load")
    await api_redis.aclose()

    # 4. live delivery
    out["live"] = await live_delivery(server.url, redis, handler, w, args)
    show("live")
    await redis.aclose()
    return out


# -- main -----------------------------------------------------------------------------------


def _rows() -> list[tuple[str, Callable[[dict[str, Any]], float], str]]:
    """(figure, how to get it from a run, target)."""
    rows: list[tuple[str, Callable[[dict[str, Any]], float], str]] = [
        ("network: follows applied/s", lambda r: r["follows_per_s"], ""),
        ("fan-out: chirps projected/s", lambda r: r["fanout"]["chirps_per_s"], ""),
        ("fan-out: timeline writes/s", lambda r: r["fanout"]["writes_per_s"], ">= 200,000"),
        ("  ceiling: bare ZADD+ZREMRANGEBYRANK/s",
         lambda r: r["fanout"]["ceiling_writes_per_s"], ""),
        ("  post script (Redis) share of the time",
         lambda r: r["fanout"]["script_share"], ""),
        ("memory: bytes/home entry (used_memory)",
         lambda r: r["fanout"]["bytes_per_entry_used_memory"], ""),
        ("memory: bytes/home entry (homes only)",
         lambda r: r["fanout"]["bytes_per_entry_homes_only"], ""),
    ]  # fmt: skip
    for phase in ("idle", "loaded"):
        for k in GROUPS:
            for q in ("p50", "p99"):
                rows.append((f"feed {phase}, {k:3} celebrities {q}, ms",
                             lambda r, p=phase, k=k, q=q: r[f"feed_{p}"][k][q],
                             "< 5" if q == "p99" else ""))  # fmt: skip
            if phase == "idle":
                rows.append((f"feed idle, {k:3} celebrities, Redis ms/call",
                             lambda r, k=k: r["feed_idle"][k]["server_ms"], ""))  # fmt: skip
    rows += [
        ("load during reads: chirps/s", lambda r: r["load"]["chirps_per_s"], ""),
        ("load during reads: timeline writes/s", lambda r: r["load"]["writes_per_s"], ""),
        ("live (SSE) delivery p50, ms", lambda r: r["live"]["p50"], ""),
        ("live (SSE) delivery p99, ms", lambda r: r["live"]["p99"], "< 200"),
        ("live (SSE) delivered / expected",
         lambda r: r["live"]["delivered"] / max(1, r["live"]["expected"]), "1"),
    ]  # fmt: skip
    return rows


def _fmt(x: float) -> str:
    if isinstance(x, int) or (x >= 1000 and float(x).is_integer()):
        return f"{x:,.0f}"
    return f"{x:,.3f}" if abs(x) < 1 else f"{x:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chirps", type=int, default=20_000, help="fan-out step")
    parser.add_argument("--batch", type=int, default=500, help="events per MULTI/EXEC")
    parser.add_argument("--celebrity-line", type=int, default=600)
    parser.add_argument("--readers", type=int, default=20, help="per reader group")
    parser.add_argument("--idle-s", type=float, default=3.0, help="feed reads without load")
    parser.add_argument("--read-s", type=float, default=10.0, help="feed reads under load")
    parser.add_argument("--load-chirps", type=int, default=30_000, help="most step 3 posts")
    parser.add_argument("--load-rate", type=float, default=0, help="chirps/s; 0 flat out")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--sse-chirps", type=int, default=1_500)
    parser.add_argument("--sse-batch", type=int, default=50)
    parser.add_argument("--sse-interval", type=float, default=0.1, help="s between batches")
    args = parser.parse_args()

    started = time.perf_counter()
    net = load_network()
    w = make_workload(args, net, load_texts())
    made = sum(len(x) for x in (w.network, w.fanout, w.celebrity_follows, w.celebrity_chirps,
                                w.reader_follows, w.load, w.live))  # fmt: skip
    print(f"{len(net.users):,} users, {len(net.edges):,} follows; {made:,} envelopes made "
          f"in {time.perf_counter() - started:.0f} s; {w.expected_fanout:,} timeline writes "
          f"for {len(w.fanout):,} chirps", flush=True)  # fmt: skip
    run = _event_loop()
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-timelines-") as home:
            server = start_redis(Path(home))
            try:
                runs.append(run(one_run(args, server, w, i)))
            finally:
                stop_process(server.pid, timeout_s=10)

    summary: dict[str, Any] = {}
    print(f"\n{'figure':44} {'median':>10} {'min':>10} {'max':>10}  {'target':>10}  vs ceiling")
    for name, get, target in _rows():
        values = [get(r) for r in runs]
        median = statistics.median(values)
        summary[name] = {"median": median, "min": min(values), "max": max(values),
                         "target": target}  # fmt: skip
        extra = ""
        if name == "fan-out: timeline writes/s":
            ratios = [r["fanout"]["ratio_to_ceiling"] for r in runs]
            summary[name]["ratio_to_ceiling"] = statistics.median(ratios)
            extra = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"{name:44} {_fmt(median):>10} {_fmt(min(values)):>10} "
              f"{_fmt(max(values)):>10}  {target:>10}  {extra}")  # fmt: skip
    print(write_results("timelines", args, runs, summary))


if __name__ == "__main__":
    main()
