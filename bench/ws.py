"""Live identity notifications over WebSockets under a burst (issue 11): 1,000 concurrent
``/ws/events`` clients receive a burst of 10,000 notifications; target p99 delivery
< 250 ms with bounded memory.

The system under test is the real API: a ``streamfold serve`` (``tests.support.ServeProcess``
on a ``deploy.localstack`` Kafka + Redis, as ``bench/commands.py`` starts it; ``api_workers``
API processes, granian, uvloop, sharing the port with SO_REUSEPORT), an admin made with
``create-admin`` and its token (``tests.support.admin_token``). Every client authenticates
with the same admin token, offered as the subprotocols ``["bearer", <jwt>]``, so all of
them have the staff audience: each API process's ``IdentityNotifications`` hub encodes
each XREAD batch once and queues the same frame for every subscriber.

The burst: ``--notifications`` entries XADDed straight to ``identity:live`` (the fields the
identity projection writes: ``event_type`` ProspectUpdated, ``subject``
``prospect/<uuid4>``, ``aggregate_version``, ``at``, ``audience`` "staff"; MAXLEN ~100,000
as the projection), by redis-py pipelines of ``--pipeline`` entries, from a process of its
own (so the writer does not share the client process's interpreter). The send time
travels in ``at``, the field the hub passes through (``api.notifications.note_of``): the
wall clock (``time.time()``) taken just before each pipeline is built, as an ISO-8601 UTC
timestamp with microseconds, the projection's format. Delivery latency of one notification
to one client = the client's ``time.time()`` when ``recv()`` returned the frame holding it
- its ``at`` (same host clock). A second figure takes the entry id's millisecond (Redis's
clock when the entry was appended) instead of ``at``: it leaves the writer's pipeline
out. Clients parse nothing on the hot path: a frame is recorded as (receive time, its
length and first bytes), its items counted with one ``bytes.count``; each distinct frame
(every staff subscriber of one API process gets the byte-identical frame) is decoded once
after the burst, and the latencies are computed with numpy.

Each run, on the one stack (started once per invocation; ``--runs`` runs one after the
other on it, so the "before" memory of run 2 and 3 includes what run 1 left):

1. API: ``--clients`` clients connect (``--connect-concurrency`` at a time) and wait for
   ``ready``; ``--slow-clients`` more connect, get ``ready``, then stop reading (their
   ``websockets`` receive buffer is capped at one frame, ``max_queue=1``: only the
   kernel's socket buffers stand between them and the server) until every fast client
   has everything; then they read what is left (until ``--drain-idle-s`` of silence) and
   their close codes are recorded (1013: the hub dropped them as too slow). The burst;
   wait until each fast client has all notifications (or ``--timeout-s``). Every client
   closes. Memory: RSS of the API processes (psutil, the ``deploy.cli api`` children of
   the serve process), sampled every 100 ms: before connecting, connected, peak from the
   burst to the end of the slow clients' drain, after the burst, 2 s after every client
   closed; and the kernel's TCP buffer memory, the whole machine's
   (``/proc/net/sockstat``), peak over the same window. CPU seconds over the burst window:
   the API processes, this (client) process, the writer, redis-server, and the machine's
   busy share (the 2 cores are shared with other work: that share minus ours is someone
   else's).
2. Ceiling, same run, same clients and writer: ``--ceiling-procs`` (default: as many as
   API processes) bare ``websockets`` asyncio servers (this file, ``--serve-ceiling``;
   uvloop; SO_REUSEPORT; no auth, no FastAPI, no per-subscriber queue) that XREAD their own
   stream (block 1 s, count 500, as the hub), encode each batch with the hub's own
   ``note_of`` + ``Batch.of`` (byte-identical frames) and ``websockets.broadcast`` it to
   every connection (no backpressure: a slow client's frames pile up in that server's
   memory). The ratio: API p99 / ceiling p99 (> 1: slower than the ceiling) and API
   deliveries/s / ceiling deliveries/s (< 1: below it).

``--profile`` adds one more API burst after the measured runs (not in the medians: py-spy
costs CPU) with ``py-spy record --nonblocking --format raw`` attached to every API
process and to this (client) process (``--py-spy``, default: ``py-spy`` on PATH or in the
venv); prints the share of samples by asyncio task, by task and the two frames under it,
and by leaf function. The raw stacks are kept in ``bench/results/local/``.

Both sides share the client: one asyncio (uvloop) process with ``websockets`` clients,
permessage-deflate not offered (the ceiling does not offer it either). It shares the 2
cores with the server, so a client-bound burst shows up on both sides alike.

Units: latencies ms, rates per second of wall time, memory MiB (RSS, sum over the
processes), CPU seconds.

Usage: .venv/bin/python bench/ws.py [--runs 3] [--clients 1000] [--notifications 10000]
    [--slow-clients 50] [--api-workers N] [--profile]
Prints a table; writes bench/results/local/ws-<utc>.json (``bench.stats``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
import websockets  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.typing import Subprotocol  # noqa: E402

from bench.served import served  # noqa: E402
from bench.stats import write_results  # noqa: E402
from pipeline.projections.identity import NOTIFY_MAX, NOTIFY_STREAM, STAFF  # noqa: E402

CEILING_STREAM = "bench:ws-ceiling:live"
NOTIFICATIONS_PREFIX = b'{"type":"notifications"'  # orjson (compact) of api.notifications.Batch
ITEM_MARK = b'{"id":"'  # starts each item of a notifications frame, nowhere else
HEAD = 120  # bytes of a frame that, with its length, tell frames apart (the first entry id)
SAMPLE_S = 0.1
TARGET_P99_MS = 250.0


# -- the writer (own process) ------------------------------------------------------------------


def burst_writer(redis_url: str, stream: str, n: int, chunk: int, ready: Any, go: Any,
                 out: Any) -> None:  # fmt: skip
    """XADD ``n`` notifications to ``stream`` in pipelines of ``chunk`` once ``go`` is set;
    puts {"ids", "chunks": [(built_at, execute_at, executed_at)], "cpu_s"} on ``out``."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.ping()
    subjects = [f"prospect/{uuid.uuid4()}" for _ in range(n)]
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    ids: list[str] = []
    chunks = []
    for start in range(0, n, chunk):
        built_at = time.time()
        at = datetime.fromtimestamp(built_at, UTC).isoformat(timespec="microseconds")
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + chunk)):
            note = {"event_type": "ProspectUpdated", "subject": subjects[i],
                    "aggregate_version": str(i + 1), "at": at, "audience": STAFF}  # fmt: skip
            pipe.xadd(stream, note, maxlen=NOTIFY_MAX, approximate=True)
        execute_at = time.time()
        ids += [x.decode() for x in pipe.execute()]
        chunks.append((built_at, execute_at, time.time()))
    out.put({"ids": ids, "chunks": chunks, "cpu_s": time.process_time() - cpu0})
    client.close()


class Writer:
    """The writer process, started and connected before the clients, released by
    :meth:`burst`."""

    def __init__(self, redis_url: str, stream: str, n: int, chunk: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.go, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=burst_writer, daemon=True,
                                args=(redis_url, stream, n, chunk, self.ready, self.go,
                                      self.out))  # fmt: skip
        self.proc.start()
        if not self.ready.wait(60):
            self.proc.kill()
            raise RuntimeError("the burst writer did not start")

    def burst(self) -> None:
        self.go.set()

    async def result(self, timeout_s: float) -> dict[str, Any]:
        result = await asyncio.to_thread(self.out.get, True, timeout_s)
        await asyncio.to_thread(self.proc.join, 10)
        return result


# -- memory and CPU ------------------------------------------------------------------------


class Sampler(threading.Thread):
    """RSS of ``pids`` (sum) every ``SAMPLE_S`` s, with wall-clock times."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.procs = [psutil.Process(p) for p in pids]
        self.samples: list[tuple[float, int, list[int]]] = []
        self.tcp: list[tuple[float, int]] = []  # the machine's TCP buffers, bytes
        self.halt = threading.Event()

    def rss(self) -> tuple[int, list[int]]:
        each = []
        for p in self.procs:
            try:
                each.append(p.memory_info().rss)
            except psutil.Error:
                each.append(0)
        return sum(each), each

    def run(self) -> None:
        while not self.halt.is_set():
            total, each = self.rss()
            self.samples.append((time.time(), total, each))
            self.tcp.append((time.time(), tcp_buffers()))
            self.halt.wait(SAMPLE_S)

    def tcp_peak(self, since: float, until: float) -> int:
        return max((b for t, b in self.tcp if since <= t <= until), default=0)

    def peak(self, since: float, until: float) -> tuple[int, list[int]]:
        window = [(total, each) for t, total, each in self.samples if since <= t <= until]
        return max(window, default=self.rss(), key=lambda s: s[0])

    def stop(self) -> None:
        self.halt.set()
        self.join(5)


def tcp_buffers() -> int:
    """Bytes the kernel holds in TCP socket buffers, every socket of the machine
    (``/proc/net/sockstat``, "TCP: ... mem <pages>")."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * resource.getpagesize()
    except (OSError, ValueError):
        pass
    return 0


def mib(n: int) -> float:
    return round(n / 2**20, 1)


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds, all CPU seconds) of the machine so far."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    return total - idle, total


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Frame:
    """One distinct notifications frame: its item count (counted on the hot path with a
    ``bytes.count``), decoded once after the burst (:meth:`decode`)."""

    n: int
    raw: bytes
    ids: list[str] = field(default_factory=list)
    at_s: np.ndarray = field(default_factory=lambda: np.array([]))  # ``at``, epoch s
    appended_s: np.ndarray = field(default_factory=lambda: np.array([]))  # id's ms, epoch s
    first: int = -1  # index of its first / last entry in the burst, once known
    last: int = -1

    def decode(self) -> None:
        items = json.loads(self.raw)["items"]
        if len(items) != self.n:
            raise RuntimeError(f"counted {self.n} items in a frame of {len(items)}")
        self.ids = [it["id"] for it in items]
        self.at_s = np.array([datetime.fromisoformat(it["at"]).timestamp() for it in items])
        self.appended_s = np.array([int(i.partition("-")[0]) / 1000 for i in self.ids])


@dataclass
class Side:
    """What one measurement's clients saw."""

    n: int
    clients: int
    frames: dict[tuple[int, bytes], Frame] = field(default_factory=dict)
    records: list[list[tuple[float, tuple[int, bytes]]]] = field(default_factory=list)
    got: list[int] = field(default_factory=list)
    closed: dict[int, Any] = field(default_factory=dict)  # client -> close code
    other_frames: int = 0
    connect_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    ready: int = 0
    done: int = 0
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # slow clients: read now
    expected_ready: int = 0
    slow_got: dict[int, int] = field(default_factory=dict)
    slow_codes: dict[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.records = [[] for _ in range(self.clients)]
        self.got = [0] * self.clients

    def learn(self, key: tuple[int, bytes], raw: bytes) -> Frame:
        frame = Frame(raw.count(ITEM_MARK), raw)
        self.frames[key] = frame
        return frame

    def mark_ready(self) -> None:
        self.ready += 1
        if self.ready >= self.expected_ready:
            self.all_ready.set()


def _close_code(ws: ClientConnection, exc: ConnectionClosed | None = None) -> Any:
    rcvd = exc.rcvd if exc is not None else ws.protocol.close_rcvd
    if rcvd is not None:
        return rcvd.code
    return "no close frame" if (exc is not None or ws.close_code is not None) else "open"


async def client(side: Side, i: int, url: str, token: str, gate: asyncio.Semaphore,
                 conns: list[ClientConnection], *, slow: bool,
                 drain_idle_s: float) -> None:  # fmt: skip
    """A fast client (``slow`` False, ``i`` < clients) records every notifications frame;
    a slow one stops reading after ``ready`` until ``side.release``, then drains."""
    async with gate:
        try:
            ws = await connect(
                url,
                subprotocols=[Subprotocol("bearer"), Subprotocol(token)],
                compression=None,
                max_size=None,
                max_queue=1 if slow else 64,
                ping_interval=None,
                open_timeout=60,
                close_timeout=2,
            )
        except Exception as exc:  # counted, reported
            side.connect_errors[type(exc).__name__] += 1
            side.mark_ready()
            return
        conns.append(ws)
        try:
            first = await asyncio.wait_for(ws.recv(decode=False), 30)
        except (ConnectionClosed, TimeoutError) as exc:
            side.connect_errors[f"no ready: {type(exc).__name__}"] += 1
            side.mark_ready()
            return
        if not first.startswith(b'{"type":"ready"'):
            side.connect_errors["first frame not ready"] += 1
        side.mark_ready()
    if slow:
        await slow_client(side, i, ws, drain_idle_s)
        return
    records, got, n, frames = side.records[i], side.got, side.n, side.frames
    try:
        while True:
            raw = await ws.recv(decode=False)
            t = time.time()
            if not raw.startswith(NOTIFICATIONS_PREFIX):
                side.other_frames += 1
                continue
            key = (len(raw), raw[:HEAD])
            frame = frames.get(key) or side.learn(key, raw)
            records.append((t, key))
            got[i] += frame.n
            if got[i] >= n and got[i] - frame.n < n:
                side.done += 1
                if side.done >= side.clients:
                    side.all_done.set()
    except ConnectionClosed as exc:
        side.closed[i] = _close_code(ws, exc)


async def slow_client(side: Side, i: int, ws: ClientConnection, drain_idle_s: float) -> None:
    await side.release.wait()
    got = 0
    try:
        while True:
            raw = await asyncio.wait_for(ws.recv(decode=False), drain_idle_s)
            if raw.startswith(NOTIFICATIONS_PREFIX):
                key = (len(raw), raw[:HEAD])
                got += (side.frames.get(key) or side.learn(key, raw)).n
    except TimeoutError:
        side.slow_codes[i] = _close_code(ws)
    except ConnectionClosed as exc:
        side.slow_codes[i] = _close_code(ws, exc)
    side.slow_got[i] = got


# -- one measurement -------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    url: str
    stream: str
    pids: list[int]


def pct(values: np.ndarray, qs: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict[str, float]:
    if values.size == 0:
        return {f"p{q:g}": float("nan") for q in qs} | {"max": float("nan")}
    got = np.percentile(values, qs)
    return {f"p{q:g}": round(float(v), 1) for q, v in zip(qs, got, strict=True)} | {
        "max": round(float(values.max()), 1)
    }


async def measure(target: Target, token: str, redis_url: str, redis_pid: int,
                  args: argparse.Namespace,
                  profile: tuple[str, Path] | None = None) -> dict[str, Any]:  # fmt: skip
    n, clients, slow_n = args.notifications, args.clients, args.slow_clients
    side = Side(n, clients)
    side.expected_ready = clients
    writer = Writer(redis_url, target.stream, n, args.pipeline)
    sampler = Sampler(target.pids)
    sampler.start()
    rss_before, _ = sampler.rss()
    gate = asyncio.Semaphore(args.connect_concurrency)
    conns: list[ClientConnection] = []
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(client(side, i, target.url, token, gate, conns, slow=False,
                                        drain_idle_s=args.drain_idle_s))
             for i in range(clients)]  # fmt: skip
    await asyncio.wait_for(side.all_ready.wait(), 180)
    connect_s = time.perf_counter() - t0
    if slow_n:
        side.all_ready.clear()
        side.expected_ready = clients + slow_n
        tasks += [asyncio.create_task(client(side, clients + j, target.url, token, gate, conns,
                                             slow=True, drain_idle_s=args.drain_idle_s))
                  for j in range(slow_n)]  # fmt: skip
        await asyncio.wait_for(side.all_ready.wait(), 120)
    await asyncio.sleep(1.0)  # every hub reader has its XREAD out
    rss_connected, _ = sampler.rss()
    tcp_connected = tcp_buffers()

    spies = []
    if profile is not None:
        spy, out_dir = profile
        for pid in [*target.pids, os.getpid()]:  # the API processes and this (client) one
            path = out_dir / f"ws-profile-{pid}.txt"
            argv = [spy, "record", "--pid", str(pid), "--rate", "100", "--nonblocking",
                    "--format", "raw", "--duration", str(args.profile_s),
                    "-o", str(path)]  # fmt: skip
            log = path.with_suffix(".log").open("wb")
            spies.append((pid, path, subprocess.Popen(argv, stdout=log, stderr=log)))
        await asyncio.sleep(1.0)  # py-spy attached

    mine = [os.getpid()]
    cpu0 = {"server": cpu_s(target.pids), "client": cpu_s(mine), "redis": cpu_s([redis_pid])}
    busy0 = machine_busy()
    go_wall = time.time()
    writer.burst()
    timed_out = False
    try:
        await asyncio.wait_for(side.all_done.wait(), args.timeout_s)
    except TimeoutError:
        timed_out = True
    done_wall = time.time()
    cpu1 = {"server": cpu_s(target.pids), "client": cpu_s(mine), "redis": cpu_s([redis_pid])}
    busy1 = machine_busy()
    wrote = await writer.result(60)
    rss_after_burst, _ = sampler.rss()
    side.release.set()
    slow_tasks = tasks[clients:]
    if slow_tasks:
        await asyncio.wait(slow_tasks, timeout=args.timeout_s)
    task_errors = collections.Counter(
        repr(t.exception())[:200] for t in tasks if t.done() and t.exception() is not None
    )
    drained_wall = time.time()
    peak, peak_each = sampler.peak(go_wall, drained_wall)
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    await asyncio.wait(tasks, timeout=10)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(2.0)
    rss_closed, _ = sampler.rss()
    sampler.stop()
    for _pid, _path, proc in spies:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT, not SIGTERM
    for _pid, _path, proc in spies:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()

    # -- what the clients saw ------------------------------------------------------------
    index = {entry_id: k for k, entry_id in enumerate(wrote["ids"])}
    bad_frames = 0
    for frame in side.frames.values():
        frame.decode()
        positions = [index.get(i, -1) for i in frame.ids]
        frame.first, frame.last = positions[0], positions[-1]
        if positions != list(range(frame.first, frame.first + frame.n)) or frame.first < 0:
            bad_frames += 1
    complete = gaps = 0
    by_key: dict[tuple[int, bytes], list[float]] = collections.defaultdict(list)
    last_recv = first_recv = None
    for i in range(clients):
        spans = sorted((side.frames[k].first, side.frames[k].last) for _, k in side.records[i])
        expect, ok = 0, True
        for first, last in spans:
            ok &= first == expect
            expect = last + 1
        if ok and expect == n:
            complete += 1
        else:
            gaps += 1
        for t, k in side.records[i]:
            by_key[k].append(t)
    lat_at, lat_appended = [], []
    for k, times in by_key.items():
        frame = side.frames[k]
        recv = np.asarray(times)[:, None]
        lat_at.append(((recv - frame.at_s[None, :]) * 1000).ravel())
        lat_appended.append(((recv - frame.appended_s[None, :]) * 1000).ravel())
        first_recv = min(times) if first_recv is None else min(first_recv, min(times))
        last_recv = max(times) if last_recv is None else max(last_recv, max(times))
    at_ms = np.concatenate(lat_at) if lat_at else np.array([])
    appended_ms = np.concatenate(lat_appended) if lat_appended else np.array([])
    chunks = wrote["chunks"]
    burst_start, burst_end = chunks[0][0], chunks[-1][2]
    delivered = int(at_ms.size)
    to_last = (last_recv - burst_start) if last_recv else float("nan")
    frames_received = sum(len(r) for r in side.records)
    client_bytes = [sum(k[0] for _, k in r) for r in side.records]
    total_bytes = sum(client_bytes)
    busy = (busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1])
    window = done_wall - go_wall
    slow_got = list(side.slow_got.values())
    slow_kinds = collections.Counter(
        "all" if g >= n else "0" if g == 0 else "some" for g in slow_got
    )
    result: dict[str, Any] = {
        "target": target.name,
        "clients": clients,
        "connect_s": round(connect_s, 2),
        "connect_errors": dict(side.connect_errors),
        "notifications": n,
        "xadd_s": round(burst_end - burst_start, 3),
        "xadd_per_s": round(n / (burst_end - burst_start)),
        "expected_deliveries": n * clients,
        "delivered": delivered,
        "missing": n * clients - delivered,
        "complete_clients": complete,
        "clients_with_gaps_or_repeats": gaps,
        "frames_not_a_contiguous_run": bad_frames,
        "fast_clients_closed": dict(collections.Counter(str(c) for c in side.closed.values())),
        "timed_out": timed_out,
        "latency_ms": pct(at_ms),
        "latency_from_redis_append_ms": pct(appended_ms),
        "first_delivery_ms": round((first_recv - burst_start) * 1000, 1) if first_recv else None,
        "time_to_last_delivery_s": round(to_last, 3),
        "deliveries_per_s": round(delivered / to_last) if delivered else 0,
        "payload_mib_per_client": mib(int(statistics.median(client_bytes))),
        "payload_mib_per_s": round(total_bytes / 2**20 / to_last) if delivered else 0,
        "frames_received": frames_received,
        "distinct_frames": len(side.frames),
        "items_per_frame": round(delivered / frames_received, 1) if frames_received else 0,
        "other_frames": side.other_frames,
        "client_task_errors": dict(task_errors),
        "slow_clients": {
            "n": slow_n,
            "items_received_after_release": dict(slow_kinds),
            "items_received_median": statistics.median(slow_got) if slow_got else None,
            "close_codes": dict(collections.Counter(str(c) for c in side.slow_codes.values())),
        },
        "memory_mib": {
            "processes": len(target.pids),
            "before_connect": mib(rss_before),
            "connected": mib(rss_connected),
            "peak_burst": mib(peak),
            "peak_burst_per_process": [mib(x) for x in peak_each],
            "after_burst": mib(rss_after_burst),
            "after_close": mib(rss_closed),
            "kernel_tcp_buffers_connected": mib(tcp_connected),
            "kernel_tcp_buffers_peak_burst": mib(sampler.tcp_peak(go_wall, drained_wall)),
        },
        "cpu_s_burst_window": {
            "window_s": round(window, 3),
            "server": round(cpu1["server"] - cpu0["server"], 2),
            "client": round(cpu1["client"] - cpu0["client"], 2),
            "redis": round(cpu1["redis"] - cpu0["redis"], 2),
            "writer": round(wrote["cpu_s"], 2),
            "machine_busy_share": round(busy, 3),
        },
    }
    if spies:
        result["profile"] = {str(pid): summarize_profile(path) for pid, path, _ in spies}
    return result


def _frame_name(raw: str) -> str:
    """``"send (starlette/websockets.py:87)"`` -> ``"send (websockets.py)"``."""
    name, sep, where = raw.partition(" (")
    if not sep:
        return raw
    return f"{name} ({where.rstrip(')').rsplit('/', 1)[-1].rsplit(':', 1)[0]})"


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """py-spy's raw (collapsed) stacks: samples; the share by asyncio task (the coroutine
    right under the event loop's ``Runner.run``; other threads by their leaf; "(no Python
    frames)": native code, e.g. granian's or uvloop's, or a sample py-spy could not walk);
    by task and the two frames under it; and by leaf function (self)."""
    if not path.exists():
        log = path.with_suffix(".log")
        return {"error": "no profile written: " + (log.read_text()[-500:] if log.exists() else "")}
    by_task: collections.Counter[str] = collections.Counter()
    by_path: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        if not frames:
            by_task["(no Python frames)"] += c
            continue
        self_[frames[-1]] += c
        loop = next((k for k, f in enumerate(frames) if f.startswith("Runner.run ")), None)
        if loop is not None:
            rest = frames[loop + 1 :] or ["(the event loop itself)"]
            by_task[rest[0]] += c
            by_path[" > ".join(rest[:3])] += c
        elif frames[0].startswith("Thread._bootstrap"):
            by_task[f"thread: {frames[-1]}"] += c
        else:
            by_task[f"partial stack: {frames[0]}"] += c
    share = lambda c: round(c / total, 3) if total else 0.0  # noqa: E731
    return {"samples": total, "path": str(path),
            "by_task": [(f, share(c)) for f, c in by_task.most_common(top)],
            "by_path": [(f, share(c)) for f, c in by_path.most_common(top)],
            "self": [(f, share(c)) for f, c in self_.most_common(top)]}  # fmt: skip


# -- the ceiling server (own processes) ---------------------------------------------------------


async def serve_ceiling(port: int, redis_url: str, stream: str, ready_file: Path) -> None:
    from redis.asyncio import Redis
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    from api.notifications import Batch, note_of

    redis = Redis.from_url(redis_url, socket_timeout=5)
    connections: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            await ws.send('{"type":"ready","last_id":"0-0"}')
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    def pick(_conn: Any, offered: Any) -> Any:
        return "bearer" if "bearer" in offered else None

    async with serve(handler, "127.0.0.1", port, compression=None, reuse_port=True,
                     ping_interval=None, select_subprotocol=pick, backlog=2048):  # fmt: skip
        ready_file.write_text("ready")
        last = "$"
        while True:
            answer = await redis.xread({stream: last}, block=1000, count=500)
            for _stream, raw in answer or ():
                entries = [(entry_id.decode(), fields) for entry_id, fields in raw]
                last = entries[-1][0]
                notes = tuple(note_of(entry_id, fields) for entry_id, fields in entries
                              if STAFF in fields[b"audience"].decode().split())  # fmt: skip
                if notes and connections:
                    broadcast(connections, Batch.of(notes).frame)


class Ceiling:
    def __init__(self, procs: int, redis_url: str, home: Path) -> None:
        from deploy.processes import free_port

        self.port = free_port()
        self.procs = []
        for k in range(procs):
            ready = home / f"ceiling-{self.port}-{k}.ready"
            argv = [sys.executable, __file__, "--serve-ceiling", str(self.port), redis_url,
                    CEILING_STREAM, str(ready)]  # fmt: skip
            log = (home / f"ceiling-{k}.log").open("wb")
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
            self.procs.append((ready, proc))
        deadline = time.monotonic() + 60
        while not all(r.exists() for r, _ in self.procs):
            if time.monotonic() > deadline or any(p.poll() is not None for _, p in self.procs):
                self.stop()
                raise RuntimeError(f"the ceiling server did not start (logs in {home})")
            time.sleep(0.1)

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p in self.procs]

    def stop(self) -> None:
        for _, p in self.procs:
            p.terminate()
        for _, p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


# -- main ---------------------------------------------------------------------------------


def api_pids(serve_pid: int) -> list[int]:
    found = []
    for child in psutil.Process(serve_pid).children(recursive=True):
        try:
            argv = child.cmdline()
        except psutil.Error:
            continue
        if argv[-2:] == ["deploy.cli", "api"]:
            found.append(child.pid)
    return sorted(found)


def raise_fd_limit(want: int = 16384) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def find_py_spy(arg: str | None) -> str | None:
    if arg:
        return arg
    return shutil.which("py-spy") or next(
        (str(p) for p in [Path(sys.executable).parent / "py-spy"] if p.exists()), None
    )


def figures(run: dict[str, Any]) -> dict[str, float]:
    """The flat figures of one run that the medians and the table are over."""
    api, ceil = run["api"], run["ceiling"]
    out = {}
    for side, r in (("api", api), ("ceiling", ceil)):
        for q in ("p50", "p90", "p99", "max"):
            out[f"{side} latency {q} ms"] = r["latency_ms"][q]
        out[f"{side} p99 from Redis append ms"] = r["latency_from_redis_append_ms"]["p99"]
        out[f"{side} time to last delivery s"] = r["time_to_last_delivery_s"]
        out[f"{side} deliveries/s"] = r["deliveries_per_s"]
        out[f"{side} payload MiB/s"] = r["payload_mib_per_s"]
        out[f"{side} missing deliveries"] = r["missing"]
        out[f"{side} XADD burst s"] = r["xadd_s"]
        out[f"{side} connect s"] = r["connect_s"]
        for k in ("before_connect", "connected", "peak_burst", "after_burst", "after_close"):
            out[f"{side} RSS {k} MiB"] = r["memory_mib"][k]
        out[f"{side} kernel TCP buffers peak MiB"] = r["memory_mib"][
            "kernel_tcp_buffers_peak_burst"
        ]
        out[f"{side} slow clients closed 1013"] = r["slow_clients"]["close_codes"].get("1013", 0)
        for k in ("server", "client", "redis"):
            out[f"{side} CPU s {k}"] = r["cpu_s_burst_window"][k]
        out[f"{side} machine busy share"] = r["cpu_s_burst_window"]["machine_busy_share"]
    out["ratio p99 api/ceiling"] = round(api["latency_ms"]["p99"] / ceil["latency_ms"]["p99"], 2)
    out["ratio deliveries/s api/ceiling"] = round(
        api["deliveries_per_s"] / max(1, ceil["deliveries_per_s"]), 3
    )
    return out


def _fmt(x: float) -> str:
    if isinstance(x, float) and x != x:
        return "nan"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.3f}" if abs(x) < 1 and x != 0 else f"{x:,.1f}"


async def bench(args: argparse.Namespace, api_url: str, token: str, redis_url: str,
                redis_pid: int, serve_pid: int, home: Path) -> dict[str, Any]:  # fmt: skip
    ws_url = api_url.replace("http://", "ws://") + "/ws/events"
    pids = api_pids(serve_pid)
    if not pids:
        raise RuntimeError("no API process found under the serve process")
    print(f"API processes: {pids}", flush=True)
    runs = []
    for i in range(args.runs):
        run: dict[str, Any] = {}
        api = Target("api", ws_url, NOTIFY_STREAM, pids)
        run["api"] = await measure(api, token, redis_url, redis_pid, args)
        print(f"run {i + 1} api: " + json.dumps(run["api"]), flush=True)
        ceiling = Ceiling(args.ceiling_procs or len(pids), redis_url, home)
        try:
            target = Target("ceiling", f"ws://127.0.0.1:{ceiling.port}/", CEILING_STREAM,
                            ceiling.pids)  # fmt: skip
            run["ceiling"] = await measure(target, token, redis_url, redis_pid, args)
        finally:
            ceiling.stop()
        print(f"run {i + 1} ceiling: " + json.dumps(run["ceiling"]), flush=True)
        run["figures"] = figures(run)
        runs.append(run)
    profiled = None
    if args.profile:
        spy = find_py_spy(args.py_spy)
        if spy is None:
            print("--profile: no py-spy found (--py-spy PATH)", flush=True)
        else:
            api = Target("api", ws_url, NOTIFY_STREAM, api_pids(serve_pid))
            profiled = await measure(api, token, redis_url, redis_pid, args,
                                     profile=(spy, home))  # fmt: skip
            saved = write_profiles(profiled)
            print(
                "profiled api run (not in the medians): "
                + json.dumps({k: v for k, v in profiled.items() if k != "profile"})
            )
            for pid, prof in profiled.get("profile", {}).items():
                who = "client (this process)" if pid == str(os.getpid()) else "API process"
                print(
                    f"\n-- py-spy, {who} {pid}: {prof.get('samples')} samples "
                    f"(100/s while running Python), raw stacks: {saved.get(pid)}"
                )
                for kind in ("by_task", "by_path", "self"):
                    print(f"  {kind}:")
                    for f, share in prof.get(kind, []):
                        print(f"    {share:6.1%}  {f}")
    return {"runs": runs, "profiled_run": profiled}


def write_profiles(profiled: dict[str, Any]) -> dict[str, str]:
    """Keep the raw stacks next to the results (bench/results/local/)."""
    from bench.stats import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    saved = {}
    for pid, prof in profiled.get("profile", {}).items():
        src = Path(prof["path"]) if "path" in prof else None
        if src is not None and src.is_file():
            dst = RESULTS / f"ws-profile-{stamp}-{pid}.txt"
            shutil.copyfile(src, dst)
            prof["path"] = str(dst.relative_to(ROOT))
            saved[pid] = prof["path"]
    return saved


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--serve-ceiling":
        port, redis_url, stream, ready = sys.argv[2:]
        uvloop.run(serve_ceiling(int(port), redis_url, stream, Path(ready)))
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--slow-clients", type=int, default=50, help="never read in the burst")
    parser.add_argument("--pipeline", type=int, default=500, help="XADDs per redis-py pipeline")
    parser.add_argument("--api-workers", type=int, default=None,
                        help="API processes (settings.api_workers; default: its default, "
                        "the core count)")  # fmt: skip
    parser.add_argument("--ceiling-procs", type=int, default=0, help="0: as many as API")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--timeout-s", type=float, default=60.0, help="for the deliveries")
    parser.add_argument("--drain-idle-s", type=float, default=3.0,
                        help="a released slow client stops after this long silent")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="one more API burst, py-spy")
    parser.add_argument("--profile-s", type=int, default=20)
    parser.add_argument("--py-spy", default=None, help="path of py-spy")
    parser.add_argument("--label", default="", help="appended to the results file name")
    args = parser.parse_args()

    fd_limit = raise_fd_limit()  # inherited by the serve process and its API children
    host = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "granian": _version("granian"),
        "redis_py": _version("redis"),
        "fd_limit": fd_limit,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    started = time.perf_counter()
    overrides = {} if args.api_workers is None else {"api_workers": str(args.api_workers)}
    with served("bench-ws-", **overrides) as run:
        stack, server = run.stack, run.server
        host["api_workers"] = server.settings.api_workers
        host["http"] = server.settings.http
        host["event_loop"] = server.settings.event_loop
        print(f"stack up in {time.perf_counter() - started:.0f} s; "
              f"api_workers={server.settings.api_workers}", flush=True)  # fmt: skip
        assert stack.redis is not None and server.proc is not None
        out = uvloop.run(bench(args, server.settings.api_url, run.token, stack.redis_url,
                               stack.redis.pid, server.proc.pid, run.home))  # fmt: skip

    runs = out["runs"]
    summary: dict[str, Any] = {"host": host}
    print(f"\n{'figure':40} {'median':>10} {'min':>10} {'max':>10}")
    for name in runs[0]["figures"]:
        values = [r["figures"][name] for r in runs]
        summary[name] = {"median": statistics.median(values), "min": min(values),
                         "max": max(values)}  # fmt: skip
        m = summary[name]
        print(f"{name:40} {_fmt(m['median']):>10} {_fmt(m['min']):>10} {_fmt(m['max']):>10}")
    p99 = summary["api latency p99 ms"]["median"]
    verdict = "met" if p99 < TARGET_P99_MS else f"missed by {p99 - TARGET_P99_MS:,.0f} ms"
    summary["target"] = {"p99_ms": TARGET_P99_MS, "median_p99_ms": p99, "verdict": verdict}
    print(f"\ntarget p99 < {TARGET_P99_MS:.0f} ms: median p99 {p99:,.1f} ms -> {verdict}")
    if out["profiled_run"] is not None:
        summary["profiled_run"] = out["profiled_run"]
    name = "ws" + (f"-{args.label}" if args.label else "")
    args.host = host
    print(write_results(name, args, runs, summary))


def _version(dist: str) -> str:
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
