"""The bare Faust ceiling of the command side (issue 22): what a Faust agent itself can do
here, with nothing of the domain.

On a stack this script starts (Kafka + Redis, ``deploy.localstack``): a Faust app built as
the commands role builds it (``pipeline.write.app.faust_app``: RocksDB tables, the same
commit interval and fixes) with one batch agent (``batch_agent``, the command agents'
loop and batch sizes) on a 6-partition topic. Per record it reads the record's key in a
table, sends one record to an output topic (awaiting every send's ack before the batch is
acked, as ``CommandProcessor.process_batch`` does), and writes the table once per key per
batch. ``--records`` records of ``--value-bytes`` bytes (about an UpdateUser command's
size), keyed over ``--keys`` aggregate ids, are produced at once with confluent-kafka;
records/s = records / (first produce .. last output record seen by a confluent-kafka
consumer of the output topic). Per run a fresh app id, input and output topic.

Usage: python bench/faust_ceiling.py [--runs 3] [--records 20000] [--keys 200]
Prints each run and the median; writes bench/results/local/faust-ceiling-<utc>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import kafka_io  # noqa: E402
from bench.stats import write_results  # noqa: E402
from connectors.kafka import PARTITIONER, TopicSpec, ensure_topics  # noqa: E402
from deploy.localstack import LocalStack  # noqa: E402
from pipeline.common.settings import Settings  # noqa: E402
from pipeline.write import faust_fixes  # noqa: E402
from pipeline.write.app import RAW, batch_agent, faust_app  # noqa: E402

PARTITIONS = 6


def produce(bootstrap: str, topic: str, records: int, keys: int, value_bytes: int) -> float:
    """Send ``records`` records at once (as the API's producer: acks=all, idempotence, the
    Java client's partitioner); returns ``time.perf_counter()`` of the first produce."""
    value = b"x" * value_bytes
    return kafka_io.fill(bootstrap, topic, records, lambda i: (f"agg-{i % keys}".encode(), value),
                         {"acks": "all", "enable.idempotence": True, "linger.ms": 5,
                          "compression.type": "none", "partitioner": PARTITIONER})  # fmt: skip


def count_until(bootstrap: str, topic: str, records: int, timeout_s: float) -> float:
    """``time.perf_counter()`` when ``records`` records of ``topic`` had been read."""
    return kafka_io.read(bootstrap, topic, records, timeout_s)[1]


async def one_run(args: argparse.Namespace, stack: LocalStack, run: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="faust-ceiling-"))
    stamp = uuid.uuid4().hex[:8]
    settings = Settings(env="test", jwt_secret="s" * 32, home=home,
                        kafka_bootstrap=stack.kafka_bootstrap, redis_url=stack.redis_url,
                        app_id=f"ceiling-{stamp}", topic_partitions=PARTITIONS)  # fmt: skip
    source_name, output_name = f"bench.ceiling.in-{stamp}", f"bench.ceiling.out-{stamp}"
    ensure_topics(stack.kafka_bootstrap, [TopicSpec(source_name), TopicSpec(output_name)],
                  partitions=PARTITIONS, replication=1)  # fmt: skip
    app = faust_app(settings)
    source = app.topic(source_name, partitions=PARTITIONS, **RAW)
    output = app.topic(output_name, partitions=PARTITIONS, **RAW)
    table = app.Table(f"ceiling-{stamp}", default=None, partitions=PARTITIONS)

    async def handle(batch: list[Any]) -> None:
        latest: dict[bytes, tuple[Any, int]] = {}
        acks = []
        for event in batch:
            key = event.message.key
            if key in latest:
                count = latest[key][1]
            else:
                with faust_fixes.current_event(event):
                    count = table.get(key) or 0
            acks.append(await output.send(key=key, value=event.message.value))
            latest[key] = (event, count + 1)
        for ack in acks:
            await ack
        for key, (event, count) in latest.items():
            with faust_fixes.current_event(event):
                table[key] = count

    batch_agent(app, source, handle, "ceiling", max_records=settings.command_batch_records,
                within_s=settings.command_batch_ms / 1000)  # fmt: skip
    await app.start()
    try:
        # ready when one record has gone through: the group has its partitions
        warm = await asyncio.to_thread(produce, stack.kafka_bootstrap, source_name, 1, 1, 8)
        await asyncio.to_thread(count_until, stack.kafka_bootstrap, output_name, 1, 120)
        ready_s = time.perf_counter() - warm
        print(f"  run {run}: ready {ready_s:.1f} s after the first record", flush=True)
        started = await asyncio.to_thread(produce, stack.kafka_bootstrap, source_name,
                                          args.records, args.keys, args.value_bytes)  # fmt: skip
        done = await asyncio.to_thread(count_until, stack.kafka_bootstrap, output_name,
                                       args.records + 1, 600)  # fmt: skip
    finally:
        await app.stop()
    rate = args.records / (done - started)
    print(f"  run {run}: {args.records:,} records in {done - started:.2f} s: {rate:,.0f}/s",
          flush=True)  # fmt: skip
    return {"records": args.records, "seconds": round(done - started, 3),
            "records_per_s": round(rate, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=200, help="distinct aggregate ids")
    parser.add_argument("--value-bytes", type=int, default=300)
    args = parser.parse_args()
    stack = LocalStack.start(Path(tempfile.mkdtemp(prefix="faust-ceiling-stack-")))
    try:
        runs = [asyncio.run(one_run(args, stack, i)) for i in range(args.runs)]
    finally:
        stack.stop()
    median = statistics.median(r["records_per_s"] for r in runs)
    print(f"bare Faust agent, median of {args.runs}: {median:,.0f} records/s")
    print(write_results("faust-ceiling", args, runs, {"records_per_s": median}))


if __name__ == "__main__":
    main()
