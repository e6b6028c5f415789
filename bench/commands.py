"""Command throughput and latency, on a stack this script starts and stops itself.

Phases (all against one fresh ``streamfold serve`` per run):
1. api-create: N CreateUser through ``POST /api/admin/users`` with C concurrent clients;
   a request returns when the command's result arrives, so its latency is command ->
   result as a client sees it (argon2 hashing in the API included).
2. api-update: N UpdateUser through ``PUT /api/admin/users/{id}``, same measure; then
   api-update-sequential: the first ``--sequential`` of them again, one at a time; then
   api-update-paced: UpdateUser open-loop at ``--paced-rate``/s for ``--paced-seconds``
   (each request at its own start time), command -> result p50/p99 at that load.
3. kafka-update: M users x R rounds of UpdateUser produced straight to users.commands
   (confluent-kafka, acks=all); command -> result from a tail of command.results, and
   command -> visible from polling the users read model's versions every 50 ms.
4. faust-ceiling: the bare Faust agent of ``bench/faust_ceiling.py`` on the same Kafka,
   with the stack idle (``--ceiling-records`` records): what Faust itself does here, and
   kafka-update's ratio to it (issue 22).
5. chirps: C students (C = ``--concurrency``) who all follow each other post N chirps,
   one client each, one chirp at a time; a request returns once the chirp is in the
   followers' timelines (issue 22's target: >= 1,000/s, p99 < 100 ms).

Usage: python bench/commands.py [--runs 3] [--n 400] [--users 200] [--rounds 10]
    [--phases api chirps paced kafka ceiling]
Prints a table per run and the medians; writes bench/results/local/commands-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import faust_ceiling  # noqa: E402
from bench.cpu import CpuMeter, per_event_us  # noqa: E402
from bench.served import served  # noqa: E402
from bench.stats import percentiles, write_results  # noqa: E402
from connectors.kafka import PARTITIONER  # noqa: E402
from pipeline.common import topics  # noqa: E402
from pipeline.domain.users.commands import UpdateUser  # noqa: E402
from pipeline.write.codecs import decode_result  # noqa: E402
from pipeline.write.routing import submission  # noqa: E402
from tests.support import ServeProcess, sql  # noqa: E402


def person(i: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    return {
        "username": f"b_{tag}",
        "email": f"bench-{tag}@example.com",
        "first_name": "Bench",
        "last_name": f"User{i}",
        "password": "benchmark password",
    }


async def api_phase(
    base: str, token: str, bodies: list[tuple[str, str, dict]], concurrency: int
) -> tuple[dict[str, Any], list[dict]]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    replies: list[dict] = []
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:

        async def one(method: str, path: str, body: dict) -> None:
            async with gate:
                t0 = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append((time.perf_counter() - t0) * 1000)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1
            replies.append(response.json())

        t0 = time.perf_counter()
        await asyncio.gather(*(one(*b) for b in bodies))
        wall = time.perf_counter() - t0
    return {
        "commands": len(bodies),
        "seconds": round(wall, 3),
        "commands_per_s": round(len(bodies) / wall, 1),
        "command_to_result_ms": percentiles(latencies),
        "status_codes": codes,
    }, replies


async def signed_in_users(base: str, count: int) -> list[str]:
    """Register ``count`` students, sign each in, and make each follow every other;
    their bearer tokens."""
    password = "correct horse battery"
    tokens, ids = [], []
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for i in range(count):
            tag = uuid.uuid4().hex[:10]
            body = {"username": f"c_{tag}", "email": f"chirper-{tag}@example.com",
                    "password": password, "display_name": f"Chirper {i}"}  # fmt: skip
            ids.append((await client.post("/api/users/register", json=body)).json()["id"])
            form = {"username": body["username"], "password": password}
            answer = await client.post("/api/auth/token", data=form)
            answer.raise_for_status()
            tokens.append(answer.json()["access_token"])
        for me, token in enumerate(tokens):
            for other, user_id in enumerate(ids):
                if other != me:
                    auth = {"Authorization": f"Bearer {token}"}
                    follow = await client.post(f"/api/users/{user_id}/follow", headers=auth)
                    follow.raise_for_status()
    return tokens


async def chirps_phase(base: str, tokens: list[str], n: int) -> dict[str, Any]:
    """``n`` chirps posted, one client per user (``tokens``), each user one chirp at a
    time: command -> in the followers' timelines (``POST /api/chirps`` answers once the
    timelines have it)."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    clients = [
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {t}"}, timeout=60)
        for t in tokens
    ]

    async def user(client: httpx.AsyncClient, count: int) -> None:
        for k in range(count):
            t0 = time.perf_counter()
            response = await client.post("/api/chirps", json={"text": f"chirp {k}"})
            latencies.append((time.perf_counter() - t0) * 1000)
            codes[response.status_code] = codes.get(response.status_code, 0) + 1

    per_user = [n // len(clients) + (1 if i < n % len(clients) else 0)
                for i in range(len(clients))]  # fmt: skip
    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(user(c, k) for c, k in zip(clients, per_user, strict=True)))
        wall = time.perf_counter() - t0
    finally:
        for client in clients:
            await client.aclose()
    return {
        "commands": n,
        "users": len(tokens),
        "seconds": round(wall, 3),
        "commands_per_s": round(n / wall, 1),
        "command_to_result_ms": percentiles(latencies),
        "status_codes": codes,
    }


async def paced_phase(
    base: str, token: str, bodies: list[tuple[str, str, dict]], rate: float
) -> dict[str, Any]:
    """``bodies`` sent open-loop at ``rate`` requests/s: command -> result p50/p99 at that
    load, each measured from the request's scheduled start (a request held back by a busy
    client counts its wait: no coordinated omission), and the rate the answers kept up
    with. Transport errors are counted by type. Past the API's capacity the latency grows
    for as long as the phase runs."""
    latencies: list[float] = []
    codes: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:
        t0 = time.perf_counter()

        async def one(i: int, method: str, path: str, body: dict) -> None:
            scheduled = t0 + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                response = await client.request(method, path, json=body)
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = f"error: {type(exc).__name__}"
            latencies.append((time.perf_counter() - scheduled) * 1000)
            codes[outcome] = codes.get(outcome, 0) + 1

        await asyncio.gather(*(one(i, *b) for i, b in enumerate(bodies)))
        wall = time.perf_counter() - t0
    return {
        "commands": len(bodies),
        "target_per_s": rate,
        "seconds": round(wall, 3),
        "commands_per_s": round(len(bodies) / wall, 1),
        "command_to_result_ms": percentiles(latencies),
        "status_codes": codes,
    }


def kafka_phase(
    server: ServeProcess, admin: httpx.Client, user_ids: list[str], rounds: int, meter: CpuMeter
) -> dict:
    bootstrap = server.settings.kafka_bootstrap
    versions = {r["user_id"]: r["version"] for r in sql(admin, _versions_sql(user_ids))}
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    target: dict[tuple[str, int], str] = {}
    visible: dict[str, float] = {}
    commands = []
    for r in range(rounds):
        for uid in user_ids:
            cmd = UpdateUser(
                command_id=str(uuid.uuid4()),
                aggregate_id=uid,
                issued_at=datetime.now(UTC),
                first_name=f"Round{r}",
                last_name="Bench",
                phone=None,
                role="student",
            )
            commands.append(cmd)
            target[(uid, versions[uid] + r + 1)] = cmd.command_id

    stop = threading.Event()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})  # fmt: skip
    meta = consumer.list_topics(topics.COMMAND_RESULTS, timeout=10).topics[topics.COMMAND_RESULTS]
    parts = []
    for p in meta.partitions:
        high = consumer.get_watermark_offsets(TopicPartition(topics.COMMAND_RESULTS, p), 10)[1]
        parts.append(TopicPartition(topics.COMMAND_RESULTS, p, high))
    consumer.assign(parts)

    def tail() -> None:
        while not stop.is_set():
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                answered.setdefault(decode_result(msg.value()).command_id, time.perf_counter())

    def watch() -> None:
        while not stop.is_set() and len(visible) < len(commands):
            now = time.perf_counter()
            for row in sql(admin, _versions_sql(user_ids)):
                for v in range(versions[row["user_id"]] + 1, row["version"] + 1):
                    cid = target.get((row["user_id"], v))
                    if cid and cid not in visible:
                        visible[cid] = now
            time.sleep(0.05)

    threads = [threading.Thread(target=tail), threading.Thread(target=watch)]
    for t in threads:
        t.start()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "partitioner": PARTITIONER, "linger.ms": 5})  # fmt: skip
    keys = server.claim_keys()
    cpu_before = meter.read()
    t0 = time.perf_counter()
    for cmd in commands:
        topic, key, value = submission(cmd, keys)
        sent[cmd.command_id] = time.perf_counter()
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
    producer.flush(60)
    deadline = time.monotonic() + 300
    while (
        len(answered) < len(commands) or len(visible) < len(commands)
    ) and time.monotonic() < deadline:
        time.sleep(0.1)
    cpu_after = meter.read()
    stop.set()
    for t in threads:
        t.join()
    consumer.close()
    done = [c.command_id for c in commands if c.command_id in answered]
    last = max((answered[c] for c in done), default=t0)
    seen = [c.command_id for c in commands if c.command_id in visible]
    return {
        "commands": len(commands),
        "answered": len(done),
        "visible": len(seen),
        "seconds": round(last - t0, 3),
        "commands_per_s": round(len(done) / (last - t0), 1) if done else 0.0,
        "command_to_result_ms": percentiles([(answered[c] - sent[c]) * 1000 for c in done]),
        "command_to_visible_ms": percentiles([(visible[c] - sent[c]) * 1000 for c in seen]),
        # until every command is answered and visible; the read-model poll (the api and
        # sinks roles) is included
        "cpu_us_per_command": per_event_us(cpu_before, cpu_after, len(done)),
    }


def _versions_sql(ids: list[str]) -> str:
    return "SELECT user_id, version FROM users FINAL WHERE user_id IN ('" + "', '".join(ids) + "')"


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    with served(processing_guarantee=args.guarantee) as run:
        stack, server, token = run.stack, run.server, run.token
        base = server.settings.api_url
        creates = [("POST", "/api/admin/users", person(i)) for i in range(args.n)]
        create_stats, replies = asyncio.run(api_phase(base, token, creates, args.concurrency))
        ids = [r["id"] for r in replies if "id" in r and "version" in r]
        updates = [
            ("PUT", f"/api/admin/users/{ids[i % len(ids)]}",
             {"first_name": "Upd", "last_name": f"N{i}", "role": "teacher"})
            for i in range(args.n)
        ]  # fmt: skip
        result: dict[str, Any] = {"api_create": create_stats}
        meter = CpuMeter(server.proc.pid, {"kafka": stack.kafka.pid, "redis": stack.redis.pid,
                                           "bench": os.getpid()})  # fmt: skip
        if "api" in args.phases:
            cpu_before = meter.read()
            result["api_update"], _ = asyncio.run(api_phase(base, token, updates, args.concurrency))
            result["api_update"]["cpu_us_per_command"] = per_event_us(
                cpu_before, meter.read(), len(updates)
            )
            # one at a time: command -> result without queueing (the latency floor)
            result["api_update_sequential"], _ = asyncio.run(
                api_phase(base, token, updates[: args.sequential], 1)
            )
        if "chirps" in args.phases:
            tokens = asyncio.run(signed_in_users(base, args.concurrency))
            cpu_before = meter.read()
            result["api_chirps"] = asyncio.run(chirps_phase(base, tokens, args.n))
            result["api_chirps"]["cpu_us_per_command"] = per_event_us(
                cpu_before, meter.read(), args.n
            )
        if "paced" in args.phases:
            # open loop at a fixed rate (issue 8: command -> result p99 at 200/s)
            paced_n = int(args.paced_rate * args.paced_seconds)
            paced_bodies = [updates[i % len(updates)] for i in range(paced_n)]
            result["api_update_paced"] = asyncio.run(
                paced_phase(base, token, paced_bodies, args.paced_rate)
            )
        if "kafka" in args.phases:
            with httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as admin:
                time.sleep(1.0)
                result["kafka_update"] = kafka_phase(
                    server, admin, ids[: args.users], args.rounds, meter
                )
        if "ceiling" in args.phases:
            ceiling_args = argparse.Namespace(records=args.ceiling_records, keys=args.users,
                                              value_bytes=300)  # fmt: skip
            ceiling = asyncio.run(faust_ceiling.one_run(ceiling_args, stack, 0))
            result["faust_ceiling"] = {**ceiling, "commands_per_s": ceiling["records_per_s"]}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=400, help="API commands per phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=200, help="PUTs sent one at a time")
    parser.add_argument("--paced-rate", type=float, default=200.0, help="UpdateUser/s, open loop")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--guarantee", choices=["at_least_once"], default="at_least_once")
    parser.add_argument("--ceiling-records", type=int, default=20_000)
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=["api", "chirps", "paced", "kafka", "ceiling"],
        default=["api", "chirps", "paced", "kafka", "ceiling"],
        help="what to run after api-create (which makes the users the others update)",
    )
    args = parser.parse_args()

    runs = []
    for i in range(args.runs):
        run = one_run(args)
        runs.append(run)
        print(f"run {i + 1}: " + json.dumps(run, indent=1))
    medians: dict[str, Any] = {}
    for phase in runs[0]:
        medians[phase] = {
            "commands_per_s": statistics.median(r[phase]["commands_per_s"] for r in runs)
        }
        for key in ("command_to_result_ms", "command_to_visible_ms"):
            if key in runs[0][phase]:
                medians[phase][key] = {
                    p: statistics.median(r[phase][key][p] for r in runs)
                    for p in ("p50", "p95", "p99")
                }
    if "kafka_update" in medians and "faust_ceiling" in medians:
        # issue 22: UpdateUser straight to Kafka against the bare Faust agent, per run
        ratios = [r["kafka_update"]["commands_per_s"] / r["faust_ceiling"]["commands_per_s"]
                  for r in runs]  # fmt: skip
        medians["kafka_update"]["ratio_to_faust_ceiling"] = round(statistics.median(ratios), 3)
    print("medians: " + json.dumps(medians, indent=1))
    path = write_results(f"commands-{args.guarantee}", args, runs, medians)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
