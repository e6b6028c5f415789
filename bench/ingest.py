"""Partner ingestion throughput and latency, on a stack this script starts and stops itself.

Per run (one fresh Kafka + Redis + ``streamfold serve``):
1. setup: admin token, a partner, a system (API key) and a required ``page_view`` structure.
2. batch-B for B in ``--batches`` (default 100 and 1000): ``bench/loadgen.py`` (its own
   process) posts ``/v1/batch`` for ``--seconds`` s over C connections: accepted events/s,
   request p50/p99 (ms; a 200 means every event is acked by Kafka).
3. pipeline, per batch phase: a monitor polls ClickHouse ``count()`` and the validation group's
   committed offsets on ``tracking.raw`` every ``--poll`` s, then waits until ClickHouse
   holds every accepted event (and validation has read what the API sent it for a second
   look). events/s = events / (last visible - first post); also the rate while only
   draining the backlog (after the last post).
4. probe: ``--probes`` single-event ``/v1/track`` posts at ``--probe-rate``/s on the idle
   system; ClickHouse is polled every 50 ms for their message ids: ingest -> queryable p50/p99
   (ms; seen = when the poll that found the row returned, an upper bound). Then the same
   while bench/loadgen.py posts batches of 100 paced at half the largest stored events/s
   of the run (past the stored rate a backlog grows without bound).
5. ceiling: the same ``tracking.raw`` JSON payloads produced by confluent-kafka alone (one
   process, acks=all, idempotence, linger 10 ms, lz4, key = system id) to a fresh topic
   for ``--seconds`` s, as long as each load phase it is compared with (a fixed count of
   200,000 events was over in ~1 s, before the producer reached its pace, and read 3-5x
   low); events/s = deliveries / (first produce .. last delivery); ratio = /v1/batch
   events/s / ceiling. Then the store's ceiling (``bench/store_ceiling.py``): a bare
   column-oriented insert and the sink's staged insert of 50k-row batches into chdb.
   (The "plain consumer" phase, a confluent-kafka validation consumer measured against the
   Faust agent, is gone since events are recorded at the API: ``tracking.raw`` only
   carries what the API refused. Its figures are in git history.)

Usage: python bench/ingest.py [--runs 3] [--seconds 8] [--concurrency 8] [--probes 100]
Prints a table of medians; writes bench/results/local/ingest-<utc>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu import CpuMeter, per_event_us  # noqa: E402
from bench.loadgen import EventFactory  # noqa: E402
from bench.served import served  # noqa: E402
from bench.stats import percentiles, write_results  # noqa: E402
from connectors.kafka import PARTITIONER, admin, base_config  # noqa: E402
from pipeline.common import topics  # noqa: E402
from pipeline.domain.tracking import (  # noqa: E402
    TrackedEvent,
    parse_sdk_event,
)
from tests.support import sql, wait_for  # noqa: E402

PAGE_VIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1, "maxLength": 2000},
        "title": {"type": "string", "maxLength": 500},
        "url": {"type": "string", "maxLength": 2000},
        "referrer": {"type": "string", "maxLength": 2000},
    },
    "required": ["path", "url"],
}
RATE_LIMITS = {
    "ingest_rate_per_s": "1000000",
    "ingest_burst": "10000000",
    "partner_ingest_rate_per_s": "1000000",
    "partner_ingest_burst": "10000000",
}
"""What the stack runs under (events/s and bucket sizes, per system and per partner):
far above what this machine reaches, so that hardware is the limit, not a 429."""
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "partitioner": PARTITIONER,
    "compression.type": "lz4",
}


# --------------------------------------------------------------------------- setup


def setup_system(admin_client: httpx.Client, base: str) -> dict[str, str]:
    """Partner + system + required ``page_view`` structure; returns ids and the API key once
    an event posted with the key is accepted (the key read model has caught up)."""
    partner = admin_client.post(
        "/api/admin/partners", json={"name": "Bench Partner", "email": "bench@example.com"}
    )
    assert partner.status_code in (200, 201), partner.text
    pid = partner.json()["id"]
    system = admin_client.post(f"/api/admin/partners/{pid}/systems", json={"name": "web"})
    assert system.status_code == 201, system.text
    sid, key = system.json()["system_id"], system.json()["api_key"]
    structure = admin_client.put(
        f"/api/admin/partners/{pid}/systems/{sid}/event-structures/page_view",
        json={"json_schema": PAGE_VIEW_SCHEMA, "required": True},
    )
    assert structure.status_code == 200, structure.text

    def structure_visible() -> bool:
        r = admin_client.get(f"/api/admin/partners/{pid}")
        if r.status_code != 200:
            return False
        return any("page_view" in s["structures"] for s in r.json()["systems"])

    wait_for(structure_visible, timeout_s=60, what="page_view structure in the read model")
    warm = {
        "event": "page_view",
        "message_id": f"warmup-{uuid.uuid4()}",
        "anonymous_id": "warmup",
        "properties": {"path": "/", "url": "https://www.example.com/"},
    }
    headers = {"Authorization": f"Bearer {key}"}

    def accepted() -> bool:
        return (
            httpx.post(f"{base}/v1/track", json=warm, headers=headers, timeout=30).status_code
            == 200
        )

    wait_for(accepted, timeout_s=60, what="API key accepted", every_s=0.5)
    rows = wait_for(
        lambda: sql(admin_client, f"SELECT count() AS n FROM tracking_events "
                                  f"WHERE message_id = '{warm['message_id']}'")[0]["n"],
        timeout_s=60, what="warm-up event in ClickHouse", every_s=0.2,
    )  # fmt: skip
    assert rows == 1
    return {"partner_id": pid, "system_id": sid, "api_key": key}


# --------------------------------------------------------------------------- monitor


class Monitor:
    """Samples (wall time s, ClickHouse rows, validation-group offsets of tracking.raw) every
    ``every_s`` seconds in a thread."""

    def __init__(self, admin_client: httpx.Client, bootstrap: str, group: str, every_s: float):
        self.admin = admin_client
        self.every_s = every_s
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._consumer = Consumer(
            {**base_config(bootstrap), "group.id": group, "enable.auto.commit": False}
        )
        meta = self._consumer.list_topics(topics.TRACKING_RAW, timeout=10)
        self._parts = [
            TopicPartition(topics.TRACKING_RAW, p)
            for p in meta.topics[topics.TRACKING_RAW].partitions
        ]
        self._lock = threading.Lock()  # the consumer is shared with the caller's thread
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def sample(self) -> tuple[float, int, int]:
        rows = int(sql(self.admin, "SELECT count() AS n FROM tracking_events")[0]["n"])
        with self._lock:
            committed = self._consumer.committed(self._parts, timeout=10)
        offsets = sum(max(tp.offset, 0) for tp in committed)
        return time.time(), rows, offsets

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.sample())
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    def raw_end(self) -> int:
        """Sum of the high watermarks of tracking.raw (records produced so far)."""
        with self._lock:
            return sum(
                self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._parts
            )

    def wait_until(self, rows: int, offsets: int, timeout_s: float) -> bool:
        """Until ClickHouse holds ``rows`` rows and the agent committed ``offsets``; False
        if that did not happen within ``timeout_s`` seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.samples and self.samples[-1][1] >= rows and self.samples[-1][2] >= offsets:
                return True
            time.sleep(self.every_s / 2)
        return False


def first_at_or_above(
    samples: list[tuple[float, int, int]], index: int, value: int
) -> tuple[float, int]:
    """(wall time s, value) of the first sample whose field ``index`` reached ``value``, or
    of the last sample if none did (a drain cut short by the timeout)."""
    hit = next((s for s in samples if s[index] >= value), samples[-1])
    return hit[0], hit[index]


def value_at(samples: list[tuple[float, int, int]], index: int, when: float) -> int:
    """Field ``index`` of the last sample taken at or before ``when`` (wall time, s)."""
    before = [s for s in samples if s[0] <= when]
    return before[-1][index] if before else samples[0][index]


def pipeline_stats(monitor: Monitor, load: dict[str, Any], rows0: int) -> dict[str, Any]:
    """Rates for one batch phase from the monitor's samples (all events/s)."""
    s = monitor.samples
    n = load["events_accepted"]
    t0, t_end = load["t_first_post"], load["t_last_done"]
    t_visible, rows1 = first_at_or_above(s, 1, rows0 + n)
    rows_at_end = value_at(s, 1, t_end)
    drain_rows = rows1 - rows_at_end

    def rate(count: int, seconds: float) -> float | None:
        return round(count / seconds, 1) if seconds > 0 and count > 0 else None

    return {
        "events": n,
        "drained": rows1 >= rows0 + n,
        "visible": rows1 - rows0,
        "seconds_to_visible": round(t_visible - t0, 2),
        "events_per_s": rate(rows1 - rows0, t_visible - t0),
        "backlog_at_last_post": rows0 + n - rows_at_end,
        "drain_events_per_s": rate(drain_rows, t_visible - t_end),
    }


def stored_once(admin_client: httpx.Client, system_id: str) -> dict[str, int]:
    """``count()`` and ``uniqExact(event_id)`` of the system's rows so far (warm-up event
    included): equal when nothing was stored twice."""
    row = sql(admin_client, "SELECT count() AS rows, uniqExact(event_id) AS ids "
                            f"FROM tracking_events WHERE system_id = '{system_id}'")[0]  # fmt: skip
    return {"rows": int(row["rows"]), "event_ids": int(row["ids"])}


# --------------------------------------------------------------------------- load phases


def load_phase(base: str, key: str, batch: int, args: argparse.Namespace, tag: str) -> dict:
    """Run bench/loadgen.py as a subprocess; returns its JSON summary, with the CPU
    seconds the load generator used (``loadgen_cpu_s``: not the pipeline's)."""
    used0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--base", base, "--key", key,
         "--batch", str(batch), "--seconds", str(args.seconds),
         "--concurrency", str(args.concurrency), "--anonymous", str(args.anonymous),
         "--prefix", tag],
        capture_output=True, text=True, timeout=args.seconds + 300, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"loadgen failed: {done.stderr[-3000:]}")
    used1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["loadgen_cpu_s"] = round(
        used1.ru_utime + used1.ru_stime - used0.ru_utime - used0.ru_stime, 2
    )
    return summary


def loaded_probe_phase(
    base: str, key: str, admin_client: httpx.Client, args: argparse.Namespace, *,
    rate: float, tag: str,
) -> dict[str, Any]:  # fmt: skip
    """``probe_phase`` while bench/loadgen.py posts batches of 100 at ``rate`` events/s
    (started 3 s before the first probe, so the pipeline is under that load)."""
    seconds = args.probes / args.probe_rate + 6
    load = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--base", base, "--key", key,
         "--batch", "100", "--seconds", str(seconds), "--concurrency", str(args.concurrency),
         "--anonymous", str(args.anonymous), "--prefix", tag, "--rate", str(rate)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        time.sleep(3)
        probe = probe_phase(base, key, admin_client, args.probes, args.probe_rate)
    finally:
        out, err = load.communicate(timeout=seconds + 300)
    if load.returncode != 0:
        raise AssertionError(f"loadgen failed: {err[-3000:]}")
    background = json.loads(out.strip().splitlines()[-1])
    return {"target_events_per_s": round(rate, 1),
            "background_events_per_s": background["events_per_s"], **probe}  # fmt: skip


def probe_phase(
    base: str, key: str, admin_client: httpx.Client, count: int, rate_per_s: float
) -> dict[str, Any]:
    """Single /v1/track posts at ``rate_per_s``; ClickHouse polled every 50 ms for the ids."""
    posted: dict[str, float] = {}
    seen: dict[str, float] = {}
    ack_ms: list[float] = []
    lock = threading.Lock()
    finished = threading.Event()

    def poll() -> None:
        while not (finished.is_set() and len(seen) >= len(posted)):
            with lock:
                pending = [m for m in posted if m not in seen]
            if pending:
                ids = "', '".join(pending)
                rows = sql(
                    admin_client,
                    f"SELECT message_id FROM tracking_events WHERE message_id IN ('{ids}')",
                )
                now = time.perf_counter()  # fmt: skip
                for r in rows:
                    seen.setdefault(r["message_id"], now)
            time.sleep(0.05)

    poller = threading.Thread(target=poll, name="probe-poll", daemon=True)
    poller.start()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        t_next = time.perf_counter()
        for i in range(count):
            mid = f"probe-{uuid.uuid4()}"
            event = {
                "event": "page_view", "message_id": mid, "anonymous_id": f"anon-{i % 300:05d}",
                "properties": {"path": "/probe", "url": "https://www.example.com/probe",
                               "title": "Probe", "referrer": ""},
                "context": {"locale": "en-US"},
            }  # fmt: skip
            t0 = time.perf_counter()
            with lock:
                posted[mid] = t0
            response = client.post("/v1/track", json=event)
            ack_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
            t_next += 1 / rate_per_s
            time.sleep(max(0.0, t_next - time.perf_counter()))
    finished.set()
    poller.join(timeout=120)
    latencies = [(seen[m] - posted[m]) * 1000 for m in posted if m in seen]
    return {
        "probes": count,
        "seen": len(latencies),
        "ack_ms": percentiles(ack_ms),
        "to_queryable_ms": percentiles(latencies),
    }


# --------------------------------------------------------------------------- kafka-only phases


def raw_payload_maker(system_id: str, partner_id: str, prefix: str) -> Callable[[int], bytes]:
    """``make(i)``: the i-th ``tracking.raw`` record (TrackedEvent JSON, as the API writes
    it) with message id ``<prefix>-<i>``; the load generator's event shapes, in turn."""
    factory = EventFactory(prefix, 300)
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="milliseconds")
    templates = []
    for _ in range(len(factory.fragments)):
        raw = json.loads(factory.event(stamp))
        raw["message_id"] = "@@MID@@"
        tracked = parse_sdk_event(raw, system_id=system_id, partner_id=partner_id,
                                  received_at=now, raw_size=300)  # fmt: skip
        assert isinstance(tracked, TrackedEvent)
        text = json.dumps(tracked.to_json_dict(), separators=(",", ":"))
        templates.append(text.split("@@MID@@"))

    def make(i: int) -> bytes:
        head, tail = templates[i % len(templates)]
        return f"{head}{prefix}-{i:010d}{tail}".encode()

    return make


def new_topic(bootstrap: str, name: str, partitions: int) -> None:
    client = admin(bootstrap)  # keep a reference: a collected client cancels the futures
    for future in client.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result()


def ceiling_phase(
    bootstrap: str, system_id: str, partner_id: str, seconds: float, parts: int
) -> dict:
    """confluent-kafka alone: produce as fast as it takes for ``seconds`` s, then flush;
    events/s = deliveries / (first produce .. flushed). Payloads are built in the loop
    (an f-string each; 20 s at this pace would not fit in memory prebuilt)."""
    topic = f"bench.ceiling-{uuid.uuid4().hex[:8]}"
    new_topic(bootstrap, topic, parts)
    make = raw_payload_maker(system_id, partner_id, f"ceil-{uuid.uuid4().hex[:6]}")
    producer = Producer({**base_config(bootstrap), **PRODUCER_CONFIG, "linger.ms": 10})
    delivered = 0
    failed = 0
    produced_bytes = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal delivered, failed
        if err is None:
            delivered += 1
        else:
            failed += 1

    key = system_id.encode()
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        value = make(n)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        produced_bytes += len(value)
        n += 1
    producer.flush(120)
    wall = time.perf_counter() - t0
    return {
        "events": n,
        "delivered": delivered,
        "failed": failed,
        "bytes_per_event": round(produced_bytes / max(n, 1), 1),
        "seconds": round(wall, 3),
        "events_per_s": round(delivered / wall, 1),
    }


def store_ceiling() -> dict[str, Any]:
    """``bench/store_ceiling.py`` in a process of its own (chdb: one directory a process)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "store_ceiling.py")],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_run(args: argparse.Namespace, run_index: int) -> dict[str, Any]:
    with served(processing_guarantee=args.guarantee, **RATE_LIMITS) as run:
        stack, server, token = run.stack, run.server, run.token
        base = server.settings.api_url
        bootstrap = server.settings.kafka_bootstrap
        parts = server.settings.topic_partitions
        result: dict[str, Any] = {}
        assert server.proc is not None and stack.kafka and stack.redis
        meter = CpuMeter(server.proc.pid, {"kafka": stack.kafka.pid, "redis": stack.redis.pid})
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as admin_client:
            ids = setup_system(admin_client, base)
            monitor = Monitor(
                admin_client,
                bootstrap,
                f"{server.settings.app_id}-tracking-validation",
                args.poll,
            )
            monitor.start()
            try:
                for batch in args.batches:
                    _, rows0, _ = monitor.sample()  # drained: stable values
                    cpu0 = meter.read()
                    tag = f"r{run_index}-b{batch}-{uuid.uuid4().hex[:6]}"
                    load = load_phase(base, ids["api_key"], batch, args, tag)
                    offsets1 = monitor.raw_end()
                    monitor.wait_until(
                        rows0 + load["events_accepted"], offsets1, args.drain_timeout
                    )
                    cpu_us = per_event_us(cpu0, meter.read(), load["events_accepted"])
                    result[f"batch_{batch}"] = {
                        "load": load,
                        "cpu_us_per_event": cpu_us,
                        "pipeline": pipeline_stats(monitor, load, rows0),
                        "stored": stored_once(admin_client, ids["system_id"]),
                    }
                    print(f"  batch {batch}: {json.dumps(result[f'batch_{batch}'])}",
                          flush=True)  # fmt: skip
            finally:
                monitor.stop()
            time.sleep(1.0)
            result["probe"] = probe_phase(
                base, ids["api_key"], admin_client, args.probes, args.probe_rate
            )
            print(f"  probe: {json.dumps(result['probe'])}", flush=True)
            # half of the largest rate the pipeline stored in this run: past the
            # stored rate a backlog grows and latency with it, so that is the maximum
            stored = max(
                result[f"batch_{b}"]["pipeline"]["events_per_s"] or 0 for b in args.batches
            )
            if stored and args.probes:
                result["probe_half_load"] = loaded_probe_phase(
                    base, ids["api_key"], admin_client, args,
                    rate=args.probe_load_rate or stored / 2,
                    tag=f"r{run_index}-half-{uuid.uuid4().hex[:6]}",
                )  # fmt: skip
                print(f"  probe at half load: {json.dumps(result['probe_half_load'])}",
                      flush=True)  # fmt: skip
        result["ceiling"] = ceiling_phase(
            bootstrap, ids["system_id"], ids["partner_id"], args.seconds, parts
        )
        for batch in args.batches:
            result[f"batch_{batch}"]["ratio_to_ceiling"] = round(
                result[f"batch_{batch}"]["load"]["events_per_s"]
                / result["ceiling"]["events_per_s"],
                3,
            )
        print(f"  ceiling: {json.dumps(result['ceiling'])}", flush=True)
        result["store_ceiling"] = store_ceiling()
        print(f"  store ceiling: {json.dumps(result['store_ceiling'])}", flush=True)
        return result


# --------------------------------------------------------------------------- report


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of ``d`` as ``a.b.c`` -> value."""
    out: dict[str, float] = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{path}."))
        elif isinstance(v, int | float) and not isinstance(v, bool) and not k.startswith("t_"):
            out[path] = v
    return out


def medians_of(runs: list[dict[str, Any]]) -> dict[str, float]:
    flat = [flatten(r) for r in runs]
    keys = [k for k in flat[0] if all(k in f for f in flat)]
    return {k: round(statistics.median(f[k] for f in flat), 3) for k in keys}


def cpu_roles(medians: dict[str, float], phase: str) -> list[str]:
    """The roles with a CPU figure in ``phase``, ``total`` last."""
    prefix = f"{phase}.cpu_us_per_event."
    roles = sorted(k[len(prefix) :] for k in medians if k.startswith(prefix))
    return [r for r in roles if r != "total"] + (["total"] if "total" in roles else [])


def summary(medians: dict[str, float], batches: list[int]) -> str:
    def g(key: str) -> str:
        value = medians.get(key)
        if value is None:
            return "-"
        return f"{value:.3f}" if key.endswith("ratio_to_ceiling") else f"{value:,.1f}"

    lines = ["", "medians over runs", f"{'metric':<58}{'value':>14}"]
    rows: list[tuple[str, str]] = []
    for b in batches:
        p = f"batch_{b}"
        rows += [
            (f"/v1/batch B={b}: accepted events/s", g(f"{p}.load.events_per_s")),
            (f"/v1/batch B={b}: request p50 ms", g(f"{p}.load.latency_ms.p50")),
            (f"/v1/batch B={b}: request p99 ms", g(f"{p}.load.latency_ms.p99")),
            (f"/v1/batch B={b}: ratio to confluent-kafka ceiling", g(f"{p}.ratio_to_ceiling")),
            (f"pipeline B={b}: into ClickHouse events/s (first post..)",
             g(f"{p}.pipeline.events_per_s")),
            (f"pipeline B={b}: into ClickHouse events/s, drain only",
             g(f"{p}.pipeline.drain_events_per_s")),
            *((f"CPU B={b}: {role} µs/event", g(f"{p}.cpu_us_per_event.{role}"))
              for role in cpu_roles(medians, p)),
        ]  # fmt: skip
    rows += [
        ("ingest -> queryable p50 ms", g("probe.to_queryable_ms.p50")),
        ("ingest -> queryable p99 ms", g("probe.to_queryable_ms.p99")),
        ("/v1/track ack p50 ms (idle)", g("probe.ack_ms.p50")),
        (
            "at half the stored rate: background events/s",
            g("probe_half_load.background_events_per_s"),
        ),
        (
            "at half the stored rate: ingest -> queryable p50 ms",
            g("probe_half_load.to_queryable_ms.p50"),
        ),
        (
            "at half the stored rate: ingest -> queryable p99 ms",
            g("probe_half_load.to_queryable_ms.p99"),
        ),
        ("confluent-kafka producer ceiling events/s", g("ceiling.events_per_s")),
        (
            "bare ClickHouse column insert, 50k rows, rows/s",
            g("store_ceiling.column_insert_rows_per_s"),
        ),
        ("the sink's staged insert alone, 50k rows, rows/s", g("store_ceiling.staged_rows_per_s")),
    ]
    lines += [f"{name:<58}{value:>14}" for name, value in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=8.0,
        help="posting time per batch size, s; the producer ceiling runs as long",
    )  # fmt: skip
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--anonymous", type=int, default=300, help="distinct anonymous ids")
    parser.add_argument("--poll", type=float, default=0.5, help="monitor period, s")
    parser.add_argument(
        "--drain-timeout", type=float, default=180, help="longest wait for ClickHouse, s"
    )
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--probe-rate", type=float, default=5.0, help="probes per second")
    parser.add_argument(
        "--probe-load-rate", type=float, default=None,
        help="background events/s while probing under load (default: half the stored rate); "
        "to compare two commits at one rate",
    )  # fmt: skip
    parser.add_argument(
        "--guarantee", choices=["exactly_once", "at_least_once"], default="at_least_once"
    )
    args = parser.parse_args()
    print("rate limits: " + ", ".join(f"{k}={v}" for k, v in RATE_LIMITS.items()), flush=True)

    runs = []
    for i in range(args.runs):
        t0 = time.monotonic()
        print(f"run {i + 1}/{args.runs}", flush=True)
        for attempt in (1, 2):
            try:
                runs.append(one_run(args, i + 1))
                break
            except AssertionError as exc:  # e.g. the worker not assigned yet at start-up
                if attempt == 2:
                    raise
                print(f"run {i + 1} failed, retrying on a fresh stack: {str(exc)[:300]}")
        print(f"run {i + 1} took {time.monotonic() - t0:.0f} s", flush=True)
    medians = medians_of(runs)
    print(summary(medians, args.batches))
    path = write_results("ingest", args, runs, medians)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
