"""Projections of the aggregates' event topics: ClickHouse read models, Redis lookups,
command statuses. They run on confluent-kafka batch consumers (``connectors/batch.py``),
not Faust agents: after a restart faust-streaming 0.15's ``take_events`` agent on
``command.results`` once stayed stalled with 334 records of lag while every other group
drained (1 of 10 crash-test runs), and the tracking path had already measured batch
consumers 7.6x faster.

Commit order for one batch (``BatchConsumer`` commits only after ``run_batch`` returns):

1. Decode every record; poison records go to the dead-letter topic (acked), once.
2. Each projection writes its rows for the batch, retried until the store takes them.
3. Return: the consumer commits the batch's offsets.

A crash anywhere before 3 re-delivers the batch; every projection here is idempotent
(ReplacingMergeTree keyed on aggregate version + skip-at-or-below), so re-delivery
changes nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog
from redis.asyncio import Redis

from connectors.batch import Record
from connectors.clickhouse import ClickHouse
from connectors.keys import PARTNER
from connectors.redis import put_command_results
from pipeline.agents.deadletter import DeadLetters
from pipeline.codecs import MalformedMessage, decode_result
from pipeline.domain import partners
from pipeline.domain.envelope import Envelope
from pipeline.projections import event_log, folding, partner_keys, users
from schemas.codec import AvroCodec
from schemas.exceptions import DecodeError

log = structlog.get_logger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class Decoded:
    envelope: Envelope
    topic: str
    partition: int
    offset: int


class Projection(Protocol):
    name: str

    async def apply(self, records: Sequence[Decoded]) -> list[tuple[Decoded, str]]:
        """Write the batch; return the records that cannot apply, with why."""
        ...


async def until_stored(what: str, write: Callable[[], Awaitable[None]]) -> None:
    """Retry ``write`` with capped exponential backoff until it succeeds.

    A store that is down stalls the projection (consumer lag grows and /readyz shows it)
    instead of skipping records or stopping the process.
    """
    delay = RETRY_FIRST_S
    while True:
        try:
            await write()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any store error: the same policy
            log.warning("store write failed, retrying", what=what, error=str(exc), in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)


class Projector:
    """Decodes one event topic's batch once and feeds it to every projection."""

    def __init__(
        self, *, codec: AvroCodec, projections: Sequence[Projection], dead_letters: DeadLetters
    ) -> None:
        self.codec = codec
        self.projections = projections
        self.dead_letters = dead_letters

    async def run_batch(self, records: Sequence[Record]) -> None:
        decoded: list[Decoded] = []
        by_record: dict[int, Record] = {}
        for source in records:
            try:
                envelope = self.codec.decode(source.value or b"")
            except DecodeError as exc:
                await self.dead_letters.send(source, f"undecodable event: {exc}")
                continue
            record = Decoded(envelope, source.topic, source.partition, source.offset)
            by_record[id(record)] = source
            decoded.append(record)
        if not decoded:
            return
        for projection in self.projections:
            for record, reason in await projection.apply(decoded):
                await self.dead_letters.send(by_record[id(record)], f"{projection.name}: {reason}")


class EventLogProjection:
    """Archives every envelope with its topic/partition/offset into ``event_log``."""

    name = "event_log"

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse

    async def apply(self, records: Sequence[Decoded]) -> list[tuple[Decoded, str]]:
        rows = [event_log.row(r.envelope, r.topic, r.partition, r.offset) for r in records]
        await until_stored(
            "event_log", lambda: self.clickhouse.insert("event_log", rows, event_log.COLUMNS)
        )
        return []


class UsersReadModel:
    """Folds user events onto the stored rows of ``users`` and ``accounts``."""

    name = "users_read_model"

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse

    async def apply(self, records: Sequence[Decoded]) -> list[tuple[Decoded, str]]:
        mine = [r for r in records if r.envelope.aggregate_type == "user"]
        if not mine:
            return []
        ids = sorted({r.envelope.aggregate_id for r in mine})
        current: users.Folded = {}

        async def load() -> None:
            rows = await self.clickhouse.query(users.LOAD_SQL, {"ids": ids})
            current.update({row["user_id"]: users.row_to_user(row) for row in rows})

        await until_stored("users load", load)
        result = users.fold(current, [r.envelope for r in mine])
        if result.changed:
            states = list(result.changed.values())
            user_rows = [users.user_row(u, v) for u, v in states]
            account_rows = [users.account_row(u, v) for u, v in states]

            async def write() -> None:
                # accounts first: LOAD_SQL joins both, so a crash between the two inserts
                # leaves users (the join's driver) at the older version and the batch redoes.
                await self.clickhouse.insert("accounts", account_rows, users.ACCOUNT_COLUMNS)
                await self.clickhouse.insert("users", user_rows, users.USER_COLUMNS)

            await until_stored("users", write)
        return [(mine[i], reason) for i, reason in result.failed]


class PartnerKeysReadModel:
    """Folds partner events onto the partner states stored in Redis and keeps the API-key
    and system lookups in step (``pipeline/projections/partner_keys.py``)."""

    name = "partner_keys"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def apply(self, records: Sequence[Decoded]) -> list[tuple[Decoded, str]]:
        mine = [r for r in records if r.envelope.aggregate_type == "partner"]
        if not mine:
            return []
        ids = sorted({r.envelope.aggregate_id for r in mine})
        current: folding.Folded = {}

        async def load() -> None:
            stored = await self.redis.mget([PARTNER.format(partner_id=i) for i in ids])
            for raw in stored:
                if raw is not None:
                    d = json.loads(raw)
                    state = partners.state_from_dict(d["state"])
                    current[state.partner_id] = (state, int(d["version"]))

        await until_stored("partners load", load)
        result = folding.fold(
            current,
            [r.envelope for r in mine],
            evolve=partners.evolve,
            from_data=partners.from_data,
        )

        async def write() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                for pid, (state, version) in result.changed.items():
                    sets, deletes = partner_keys.writes(
                        current.get(pid, (None, 0))[0], state, version
                    )
                    pipe.mset(sets)
                    if deletes:
                        pipe.delete(*deletes)
                await pipe.execute()

        if result.changed:
            await until_stored("partner keys", write)
        return [(mine[i], reason) for i, reason in result.failed]


class CommandStatusProjection:
    """``command.results`` -> Redis, for ``GET /api/commands/{id}`` after a 202."""

    def __init__(self, redis: Redis, dead_letters: DeadLetters) -> None:
        self.redis = redis
        self.dead_letters = dead_letters

    async def run_batch(self, records: Sequence[Record]) -> None:
        results = []
        for record in records:
            try:
                results.append(decode_result(record.value or b"").to_dict())
            except MalformedMessage as exc:
                await self.dead_letters.send(record, str(exc))
        if results:
            await until_stored("command status", lambda: put_command_results(self.redis, results))
