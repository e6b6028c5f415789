"""The identity read models keep seed 003's inbox promise: a re-delivered event changes
nothing (issue 11). Real chdb and real Redis; the handler is fed as the runner feeds it.

The runner's checkpoint plays the seed's "processed messages" table and the version skip
(``folding.py``) its duplicate check: here a whole history is applied, then applied
again, then again in pieces and out of batch order, and the tables, the search index and
the notification stream must be exactly what one delivery made. Runs in a subprocess: chdb
opens one data path per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, Endpoints

pytestmark = pytest.mark.integration


def _history() -> list[Any]:
    """Envelopes of a small identity history: creates, an update, a merge (all three
    steps), a conversion with its student, an enrolment."""
    from datetime import UTC, datetime, timedelta

    from pipeline.domain.handling import Snapshot, handle
    from pipeline.domain.identity import prospects, reactions, students
    from pipeline.projections.identity import MODELS

    t0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    snapshots: dict[tuple[str, str], Snapshot] = {}
    out: list[Any] = []
    queue: list[Any] = []

    def run(command: Any) -> None:
        queue.append(command)
        while queue:
            c = queue.pop(0)
            kind = (
                prospects.AGGREGATE_TYPE
                if type(c).__name__ in prospects.COMMAND_TYPES
                else "student"
            )
            spec = MODELS[kind].spec
            key = (kind, c.aggregate_id)
            outcome = handle(
                spec, snapshots.get(key, Snapshot(state=None)), c, producer="t", window=16
            )
            snapshots[key] = outcome.snapshot
            for env in outcome.envelopes:
                out.append(env)
                queue.extend(reactions.reactions(env))

    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]
    for n, pid in enumerate(ids):
        run(prospects.CreateProspect(
            command_id=f"c{n}", aggregate_id=pid, issued_at=t0 + timedelta(seconds=n),
            first_name=f"Ada{n}", last_name="Lovelace", email=f"ada{n}@example.org",
            phone="504-621-8927" if n == 0 else None, source="web", notes=f"note {n}",
        ))  # fmt: skip
    later = t0 + timedelta(minutes=1)
    run(prospects.UpdateProspect(command_id="u", aggregate_id=ids[2], issued_at=later, notes="x"))
    run(
        prospects.MergeProspect(
            command_id="m", aggregate_id=ids[1], issued_at=later, into_id=ids[0]
        )
    )
    run(
        prospects.ConvertProspect(
            command_id="v", aggregate_id=ids[0], issued_at=later, role="student"
        )
    )
    student = prospects.person_id(ids[0], "student")
    run(
        students.EnrollStudent(
            command_id="e", aggregate_id=student, issued_at=later, course="cs101"
        )
    )
    return out


SCRIPT = r"""
import asyncio, json, sys
sys.path.insert(0, {repo!r})
from tests.integration.test_identity_projection import scenario
print(json.dumps(asyncio.run(scenario({home!r}, {redis_url!r}))))
"""


async def scenario(home: str, redis_url: str) -> dict[str, Any]:
    from connectors.clickhouse import ClickHouse
    from connectors.redis import open_redis
    from pipeline.projections import identity
    from pipeline.projections.projection import Context, Decoded

    clickhouse = ClickHouse.open(f"chdb://{home}/clickhouse")
    redis = open_redis(redis_url)
    await redis.delete(identity.NOTIFY_STREAM)
    tables = {t: t for t in identity.TABLES}
    for statement in identity.ddl(tables):
        await clickhouse.command(statement)
    ctx = Context(projection="identity", version=1, tables=tables, replaying=False,
                  clickhouse=clickhouse, redis=redis)  # fmt: skip
    history = _history()
    batch = [Decoded(env, "t", 0, n, None) for n, env in enumerate(history)]  # type: ignore[arg-type]

    async def snapshot() -> dict[str, Any]:
        rows = {}
        for table in identity.TABLES:
            found = await clickhouse.query(f"SELECT * FROM {table} FINAL ORDER BY ALL")
            rows[table] = json.loads(json.dumps(found, default=str))
        notes = await redis.xrange(identity.NOTIFY_STREAM)
        rows["notifications"] = [
            {k.decode(): v.decode() for k, v in fields.items()} for _id, fields in notes
        ]
        return rows

    failed = await identity.handle(batch, ctx)
    once = await snapshot()
    again = await identity.handle(batch, ctx)  # a crash before the checkpoint: all again
    twice = await snapshot()
    for piece in (batch[5:], batch[:3], batch[2:9]):  # re-delivered in pieces, out of order
        await identity.handle(piece, ctx)
    pieces = await snapshot()
    await redis.aclose()
    events = [e.event_type for e in history]
    failures = [r for _d, r in failed] + [r for _d, r in again]
    return {"failed": failures, "once": once, "twice": twice, "pieces": pieces, "events": events}


def test_a_redelivered_event_changes_nothing(endpoints: Endpoints, tmp_path: Path) -> None:
    redis_url = endpoints.redis_url.rsplit("/", 1)[0] + "/9"
    code = SCRIPT.format(repo=str(REPO), home=str(tmp_path), redis_url=redis_url)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["failed"] == []
    once = result["once"]
    assert result["twice"] == once and result["pieces"] == once
    # one notification per event, in order, and what the tables hold is the fold
    assert [n["event_type"] for n in once["notifications"]] == result["events"]
    summary = {r["prospect_id"]: r for r in once["prospect_summary"]}
    merged, survivor = (
        summary["00000000-0000-4000-8000-000000000001"],
        summary["00000000-0000-4000-8000-000000000000"],
    )
    assert (merged["status"], merged["into_id"]) == ("merged", survivor["prospect_id"])
    assert survivor["other_emails"] == ["ada1@example.org"]
    assert survivor["converted"] == ["student"]
    [student] = once["students"]
    assert student["courses"] == ["CS-101"] and student["version"] == 2
    live_terms = {(r["term"], r["prospect_id"]) for r in once["prospect_search"] if r["live"]}
    assert ("ada1@example.org", survivor["prospect_id"]) in live_terms
    assert ("5046218927", survivor["prospect_id"]) in live_terms
