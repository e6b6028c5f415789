"""Poison records and crash recovery on the real broker, worker and ClickHouse engine."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from connectors.kafka import PARTITIONER
from pipeline.common import topics
from pipeline.domain.users import USER_SPEC
from pipeline.domain.users.commands import CreateUser, RecordLogin, UpdateUser
from pipeline.domain.values import hash_password
from pipeline.projections import users as users_projection
from pipeline.write.codecs import decode_result
from pipeline.write.routing import new_aggregate_id, submission
from schemas.codec import AvroCodec
from schemas.registry import SchemaRegistry
from tests.support import ServeProcess, new_user, read_topic, sql, wait_for

pytestmark = pytest.mark.integration

CODEC = AvroCodec(SchemaRegistry.load())
USER_TOPICS = (
    USER_SPEC.commands_topic,
    USER_SPEC.reservations_topic,
    USER_SPEC.events_topic,
    topics.COMMAND_RESULTS,
)


def producer(server: ServeProcess) -> Producer:
    return Producer(
        {
            "bootstrap.servers": server.settings.kafka_bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
            "linger.ms": 5,
        }
    )


def produce_commands(server: ServeProcess, commands: list[Any]) -> None:
    p = producer(server)
    keys = server.claim_keys()
    for command in commands:
        topic, key, value = submission(command, keys)
        while True:
            try:
                p.produce(topic, value=value, key=key)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0


def test_poison_event_is_dead_lettered_and_projection_keeps_going(
    server: ServeProcess, admin: httpx.Client
) -> None:
    poison = {
        b"not avro at all": "bad magic",
        b"\xc3\x01" + b"\x00" * 8 + b"\x02": "unknown fingerprint",
        b"\xc3\x01": "truncated header",
    }
    p = producer(server)
    key = f"poison-{uuid.uuid4()}".encode()
    for value in poison:
        p.produce(USER_SPEC.events_topic, key=key, value=value)
    assert p.flush(30) == 0

    # the projection goes on: a user created after the poison records becomes visible
    body = new_user("after", first_name="After", last_name="Poison")
    created = admin.post("/api/admin/users", json=body)
    assert created.status_code == 201
    uid = created.json()["id"]
    wait_for(
        lambda: admin.get(f"/api/admin/users/{uid}").status_code == 200,
        timeout_s=20,
        what="user visible after poison",
    )

    # each projection of users.events dead-letters each poison record
    readers = ("users", "event_log", "timelines")

    def dead_letters() -> list[Any] | None:
        records = [
            r
            for r in read_topic(server.settings.kafka_bootstrap, topics.PROJECTIONS_DLQ)
            if r.key() == key
        ]
        return records if len(records) == len(poison) * len(readers) else None

    records = wait_for(
        dead_letters, timeout_s=30, what="a dead letter per reader and record", every_s=0.5
    )
    assert {r.value() for r in records} == set(poison)
    by_reader: dict[str, int] = {}
    for record in records:
        headers = {k: v.decode() for k, v in record.headers()}
        assert headers["source.topic"] == USER_SPEC.events_topic
        name, version, why = headers["reason"].split(" ", 2)
        assert version.startswith("v") and why.startswith("undecodable: "), headers["reason"]
        by_reader[name] = by_reader.get(name, 0) + 1
        assert int(headers["source.offset"]) >= 0
    assert by_reader == dict.fromkeys(readers, len(poison))


def _user_ids(n: int) -> list[tuple[str, str]]:
    return [(cid := str(uuid.uuid4()), new_aggregate_id(cid)) for _ in range(n)]


def test_sigkill_mid_batch_then_restart_equals_a_fresh_replay(
    server: ServeProcess, admin: httpx.Client
) -> None:
    """Kill -9 the worker (and API, and embedded ClickHouse) while it is projecting; after
    a restart the read models equal a fold of the whole topic: nothing missing, nothing
    applied twice, and every command answered."""
    now = datetime.now(UTC)
    hashed = hash_password("crash test password").value
    ids = _user_ids(150)
    creates = [
        CreateUser(
            command_id=cid,
            aggregate_id=uid,
            issued_at=now,
            username=f"crash_{uid[:8]}",
            email=f"crash-{uid}@example.com",
            first_name="Crash",
            last_name="Test",
            phone=None,
            role="student",
            password_hash=hashed,
        )
        for cid, uid in ids
    ]
    produce_commands(server, creates)
    wait_for(
        lambda: server.drained(USER_TOPICS), timeout_s=90, what="creates processed", every_s=0.5
    )

    updates: list[Any] = []
    for round_ in range(12):
        for _, uid in ids:
            at = now + timedelta(seconds=round_ + 1)
            if round_ % 3 == 2:
                updates.append(
                    RecordLogin(
                        command_id=str(uuid.uuid4()),
                        aggregate_id=uid,
                        issued_at=at,
                        logged_in_at=at,
                    )
                )
            else:
                updates.append(
                    UpdateUser(
                        command_id=str(uuid.uuid4()),
                        aggregate_id=uid,
                        issued_at=at,
                        first_name=f"Round{round_}",
                        last_name="Test",
                        phone=None,
                        role=("student", "teacher")[round_ % 2],
                    )
                )
    our_ids = [uid for _, uid in ids]
    in_list = "', '".join(our_ids)
    versions_sql = f"SELECT sum(version) AS v FROM users FINAL WHERE user_id IN ('{in_list}')"
    base = sql(admin, versions_sql)[0]["v"]
    produce_commands(server, updates)

    # kill once the projection has applied some, but not all, of the updates
    wait_for(
        lambda: sql(admin, versions_sql)[0]["v"] > base + len(updates) // 6,
        timeout_s=60,
        what="projection under way",
        every_s=0.05,
    )
    progress = sql(admin, versions_sql)[0]["v"] - base
    server.kill()
    killed_at = time.monotonic()
    assert progress < len(updates), "killed too late: everything was already projected"
    server.start()
    # back at work within 30 s of the crash: the dead member's partitions are reassigned
    # (session timeout) and the command agent runs again (no crashed agent, no stall)
    backlog = server.lag()[USER_SPEC.commands_topic]
    wait_for(
        lambda: server.lag()[USER_SPEC.commands_topic] < backlog or server.drained(USER_TOPICS),
        timeout_s=max(1.0, 30 - (time.monotonic() - killed_at)),
        what="the command agent processing again within 30 s of the SIGKILL",
        every_s=0.2,
    )
    print(f"\nprocessing again {time.monotonic() - killed_at:.1f} s after the SIGKILL")
    try:
        wait_for(
            lambda: server.drained(USER_TOPICS),
            timeout_s=180,
            what="backlog drained after restart",
            every_s=0.5,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; lag: {server.last_lag}") from exc

    # the truth: a fresh fold of everything on the topic
    envelopes: dict[tuple[str, int], set[str]] = defaultdict(set)
    per_user: dict[str, dict[int, Any]] = defaultdict(dict)
    for record in read_topic(server.settings.kafka_bootstrap, USER_SPEC.events_topic, timeout_s=60):
        try:
            env = CODEC.decode(record.value())
        except Exception:
            continue  # the poison test's records
        if env.aggregate_id in set(our_ids):
            envelopes[(env.aggregate_id, env.aggregate_version)].add(env.event_id)
            per_user[env.aggregate_id][env.aggregate_version] = env
    # a replayed command yields the same event: one event id per (aggregate, version)
    assert all(len(ids_) == 1 for ids_ in envelopes.values())
    expected = {}
    for uid, by_version in per_user.items():
        assert sorted(by_version) == list(range(1, len(by_version) + 1)), f"gap in {uid}"
        fold = users_projection.fold({}, [by_version[v] for v in sorted(by_version)])
        assert not fold.failed
        expected[uid] = fold.changed[uid]
    assert len(expected) == len(ids)
    # every update was accepted exactly once: 1 create + 12 rounds per user
    assert all(version == 13 for _, version in expected.values())

    rows = {
        r["user_id"]: r
        for r in sql(
            admin,
            "SELECT user_id, first_name, role, version, toString(last_login_at) AS last_login "
            f"FROM users FINAL WHERE user_id IN ('{in_list}')",
        )
    }
    assert set(rows) == set(expected)
    for uid, (state, version) in expected.items():
        row = rows[uid]
        assert (row["first_name"], row["role"], row["version"]) == (
            state.first_name,
            str(state.role),
            version,
        )
        assert row["last_login"].startswith(state.last_login_at.strftime("%Y-%m-%d %H:%M:%S"))

    logged = sql(
        admin,
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM event_log FINAL "
        f"WHERE aggregate_type = 'user' AND aggregate_id IN ('{in_list}')",
    )[0]
    assert logged["n"] == logged["ids"] == len(envelopes)

    copies: dict[tuple[str, int], int] = defaultdict(int)
    for record in read_topic(server.settings.kafka_bootstrap, USER_SPEC.events_topic, timeout_s=60):
        if record.key().decode() in expected:
            env = CODEC.decode(record.value())
            copies[(env.aggregate_id, env.aggregate_version)] += 1
    doubled_events = sum(n - 1 for n in copies.values())

    answered: dict[str, int] = defaultdict(int)
    first_answer: dict[str, Any] = {}
    wanted = {c.command_id for c in creates + updates}
    for record in read_topic(server.settings.kafka_bootstrap, topics.COMMAND_RESULTS, timeout_s=60):
        result = decode_result(record.value())
        if result.command_id in wanted:
            answered[result.command_id] += 1
            # a repeated answer (a replayed command) says the same thing, marked duplicate
            same = replace(result, duplicate=False)
            assert first_answer.setdefault(result.command_id, same) == same
    assert set(answered) == wanted, f"{len(wanted - set(answered))} commands never answered"
    duplicates = sum(n - 1 for n in answered.values())
    doubled_update_results = sum(answered[c.command_id] - 1 for c in updates)
    print(
        f"\nkilled after {progress} of {len(updates)} updates projected; event records "
        f"doubled on the topic: {doubled_events}; results doubled: {duplicates} "
        f"({doubled_update_results} of commands sent straight to users.commands)"
    )


def test_a_batch_of_commands_answers_as_one_at_a_time_would(server: ServeProcess) -> None:
    """Commands produced in one burst reach the agent as one batch (several aggregates on
    several partitions, each aggregate more than once): a later command of an aggregate
    sees the state an earlier one of the same batch left, a command repeated within the
    batch is answered once and then as a duplicate, and a stale ``expected_version`` is
    a conflict, exactly as handling them one at a time gives."""
    now = datetime.now(UTC)
    ids = _user_ids(12)
    hashed = hash_password("batch test password").value
    creates = [
        CreateUser(command_id=cid, aggregate_id=uid, issued_at=now, username=f"batch_{uid[:8]}",
                   email=f"batch-{uid}@example.com", first_name="Batch", last_name="Test",
                   phone=None, role="student", password_hash=hashed)
        for cid, uid in ids
    ]  # fmt: skip
    produce_commands(server, creates)
    wait_for(lambda: server.drained(USER_TOPICS), timeout_s=60, what="creates processed")

    burst: list[Any] = []
    for _, uid in ids:
        first = UpdateUser(
            command_id=str(uuid.uuid4()),
            aggregate_id=uid,
            issued_at=now,
            first_name="One",
            last_name="Test",
            phone=None,
            role="teacher",
        )
        second = replace(first, command_id=str(uuid.uuid4()), first_name="Two", expected_version=2)
        stale = replace(
            first, command_id=str(uuid.uuid4()), first_name="Stale", expected_version=2
        )  # the aggregate is at 3 by then
        burst += [first, first, second, stale]  # fmt: skip
    produce_commands(server, burst)
    wait_for(lambda: server.drained(USER_TOPICS), timeout_s=60, what="burst processed")

    wanted = {c.command_id for c in burst}
    answers: dict[str, list[Any]] = defaultdict(list)
    for record in read_topic(server.settings.kafka_bootstrap, topics.COMMAND_RESULTS):
        result = decode_result(record.value())
        if result.command_id in wanted:
            answers[result.command_id].append(result)
    for index in range(0, len(burst), 4):
        first, _, second, stale = burst[index : index + 4]
        once, again = answers[first.command_id]
        assert (once.status, once.version, once.duplicate) == ("accepted", 2, False)
        assert replace(again, duplicate=False) == once and again.duplicate
        [two] = answers[second.command_id]
        assert (two.status, two.version) == ("accepted", 3)
        [conflict] = answers[stale.command_id]
        assert (conflict.status, conflict.reason, conflict.version) == ("rejected", "conflict", 3)

    versions: dict[str, list[int]] = defaultdict(list)
    users = {uid for _, uid in ids}
    for record in read_topic(server.settings.kafka_bootstrap, USER_SPEC.events_topic):
        if record.key() is not None and record.key().decode() in users:
            versions[record.key().decode()].append(CODEC.decode(record.value()).aggregate_version)
    assert all(sorted(v) == [1, 2, 3] for v in versions.values()) and len(versions) == len(ids)
