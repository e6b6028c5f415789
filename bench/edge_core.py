"""The per-event ingestion hot path, Python against compiled (``streamfold_edge``), in one
process, without HTTP, Kafka or Redis.

For a ``/v1/batch`` body of B realistic events (``bench/loadgen.py``'s ``page_view`` events,
~300 bytes of JSON each), each path goes from the body bytes to what is produced:

- python: ``jsontext.loads`` -> ``read_request`` -> ``decode_events`` -> ``Recorder.record``
  for every accepted event (the production recorder: a cached view, structures compiled
  with Python's ``jsonschema``, Avro by ``AvroCodec``), as ``Ingest.publish`` runs it, in
  one coroutine;
- compiled: ``parse_request`` -> ``Request.decode`` (validators compiled once, as the
  caller caches them per structure version).

Two systems: one without structures (unknown events accepted) and one whose
``page_view`` has a required structure (``bench/ingest.py``'s). Each run times
``--batches`` batches per path; a run's figure is µs per event; the medians of
``--runs`` runs are printed and written, with every run, to
``bench/results/local/edge_core-<utc>.json`` (git-ignored).

Usage: python bench/edge_core.py [--batch 1000] [--batches 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import streamfold_edge  # noqa: E402

# Every import of project code, in one block (modules move: repoint here).
from bench.ingest import PAGE_VIEW_SCHEMA  # noqa: E402
from bench.loadgen import EventFactory  # noqa: E402
from bench.stats import write_results  # noqa: E402
from pipeline.domain import jsontext  # noqa: E402
from pipeline.domain.tracking import decode_events, read_request  # noqa: E402
from pipeline.edge.recording import Recorder, Structures  # noqa: E402
from schemas.codec import AvroCodec  # noqa: E402
from schemas.registry import SchemaRegistry  # noqa: E402

SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
PARTNER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
PRODUCER = "streamfold-api"
MAX_EVENT_BYTES = 32 * 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _view(structured: bool) -> dict[str, Any]:
    structures = {}
    if structured:
        structures["page_view"] = {
            "json_schema": json.dumps(PAGE_VIEW_SCHEMA),
            "required": True,
            "version": 1,
        }
    return {"unknown_events": "accept", "structures": structures}


class _Redis:
    """The one Redis call ``Structures`` makes (the system's view), answered from memory:
    after the first call the view is in the production cache anyway."""

    def __init__(self, view: dict[str, Any]) -> None:
        self.text = json.dumps(view)

    async def get(self, key: str) -> str:
        return self.text


def python_path(codec: AvroCodec, structured: bool) -> Callable[[bytes], int]:
    """body -> number of outcomes, through the Python path."""
    structures = Structures(_Redis(_view(structured)), ttl_s=1e9)  # type: ignore[arg-type]
    recorder = Recorder(structures, codec, PRODUCER)
    loop = asyncio.new_event_loop()

    async def record(events: list[Any]) -> int:
        n = 0
        for e in events:
            outcome = await recorder.record(e)
            if not isinstance(outcome, bytes):
                e.to_json()
            n += 1
        return n

    def run(body: bytes) -> int:
        request = read_request(jsontext.loads(body), None)
        decoded = decode_events(
            request,
            system_id=SYSTEM_ID,
            partner_id=PARTNER_ID,
            received_at=datetime.now(UTC),
            max_event_bytes=MAX_EVENT_BYTES,
        )
        return loop.run_until_complete(record(decoded))

    return run


def compiled_path(codec: AvroCodec, structured: bool) -> Callable[[bytes], int]:
    fingerprint = codec.registry.fingerprint("TrackingEventRecorded", 2)
    structures = {}
    if structured:
        validator = streamfold_edge.Validator(json.dumps(PAGE_VIEW_SCHEMA))
        structures["page_view"] = (validator, True, 1)

    def run(body: bytes) -> int:
        received = (datetime.now(UTC) - EPOCH) // timedelta(microseconds=1)
        request = streamfold_edge.parse_request(body, None)
        outcomes = request.decode(
            system_id=SYSTEM_ID,
            partner_id=PARTNER_ID,
            received_at_us=received,
            producer=PRODUCER,
            max_event_bytes=MAX_EVENT_BYTES,
            fingerprint=fingerprint,
            structures=structures,
            reject_unknown=False,
        )
        return len(outcomes)

    return run


def time_path(run: Callable[[bytes], int], bodies: list[bytes], batch: int) -> float:
    """µs per event over all of ``bodies``."""
    start = time.perf_counter()
    for body in bodies:
        assert run(body) == batch
    return (time.perf_counter() - start) * 1e6 / (batch * len(bodies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="events per body")
    parser.add_argument("--batches", type=int, default=10, help="bodies per path per run")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    codec = AvroCodec(SchemaRegistry.load())
    factory = EventFactory("edge-core", 300)
    bodies = [factory.batch_body(args.batch) for _ in range(args.batches)]
    event_bytes = statistics.mean(
        len(jsontext.dumps(e)) for e in jsontext.loads(bodies[0])["batch"]
    )
    paths: dict[str, Callable[[bytes], int]] = {}
    for structured in (False, True):
        suffix = "structure" if structured else "no-structure"
        paths[f"python/{suffix}"] = python_path(codec, structured)
        paths[f"compiled/{suffix}"] = compiled_path(codec, structured)
    # both paths give the same bytes (tests/unit/edge/ checks it on every input; here once)
    for run in paths.values():
        run(bodies[0])  # warm: validators compiled, caches filled
    runs: list[dict[str, float]] = []
    for _ in range(args.runs):
        runs.append(
            {name: round(time_path(run, bodies, args.batch), 3) for name, run in paths.items()}
        )
    medians = {name: statistics.median(r[name] for r in runs) for name in paths}
    for suffix in ("no-structure", "structure"):
        medians[f"speedup/{suffix}"] = round(
            medians[f"python/{suffix}"] / medians[f"compiled/{suffix}"], 1
        )
    medians["event_bytes"] = round(event_bytes, 1)
    print(
        f"batch {args.batch} events of ~{event_bytes:.0f} B; medians of {args.runs} runs "
        f"x {args.batches} batches, µs per event:"
    )
    for name, value in medians.items():
        print(f"  {name:32s} {value}")
    path = write_results("edge_core", args, runs, medians)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
