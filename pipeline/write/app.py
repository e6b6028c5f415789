"""The Faust app: tables, topics and agents, built from settings by ``create_app``.

No module-level app: each entrypoint (serve, worker, tests) builds its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from redis.asyncio import Redis

from connectors import metrics
from connectors.kafka import AsyncProducer
from pipeline.common.deadletter import DeadLetters
from pipeline.common.settings import Settings
from pipeline.domain.identity.prospects import PROSPECT_SPEC
from pipeline.write import faust_fixes
from pipeline.write.agents.commands import CommandProcessor
from pipeline.write.agents.reactions import ReactionProcessor
from pipeline.write.agents.reservations import ReservationProcessor
from pipeline.write.agents.roster import RosterKeeper
from pipeline.write.aggregates import AGGREGATES, Aggregate
from pipeline.write.routing import ClaimKeys
from schemas.codec import AvroCodec


class CoPartitionedTable(faust.Table):
    """A Faust table whose co-partitioning check waits for real metadata.

    faust-streaming 0.15 checks, on a table's first write, that its changelog has as many
    partitions as the source topic, asking aiokafka's coordinator snapshot, which reports
    0 for any topic missing from the client's cluster metadata at that moment
    (``GroupCoordinator._get_metadata_snapshot``: ``partitions_for_topic(t) or []``). On
    a fresh broker and after restarts that raised ``PartitionsMismatch(... 0 partitions)``
    and the command agent stayed crashed: commands piled up unprocessed. An unknown count
    (0 or None) is asked again at the next write; a real mismatch still raises. The
    topics' partition counts are also checked when they are created
    (``connectors.kafka.ensure_topics``).
    """

    def _verify_source_topic_partitions(self, source_topic: str) -> None:
        consumer = self.app.consumer
        changelog = self.changelog_topic_name
        if not consumer.topic_partitions(source_topic) or not consumer.topic_partitions(changelog):
            return
        faust.Table._verify_source_topic_partitions(self, source_topic)


RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


@dataclass(frozen=True)
class Pipeline:
    """``app``: the Faust app; ``kafka``: the librdkafka producer its command agents
    produce events and results with (close it after the app stopped)."""

    app: faust.App
    kafka: AsyncProducer


def faust_app(settings: Settings) -> faust.App:
    """The Faust app as the commands role runs it (broker, RocksDB tables, commit interval,
    session timeouts, the fixes in ``faust_fixes``), with no agent yet: ``create_app``
    adds the command agents, ``bench/faust_ceiling.py`` a bare one."""
    faust_fixes.install()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="rocksdb://",
        datadir=str(settings.home / "faust"),
        processing_guarantee=settings.processing_guarantee,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=settings.commit_interval_ms / 1000,
        # A SIGKILLed member keeps its partitions until its session expires, and Faust's
        # default is 60 s: a restarted worker sat idle that long (measured: 61 s to
        # /readyz, 70 s to drain). 10 s, as the batch consumers use; heartbeats every 3 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        web_enabled=False,
        autodiscover=False,
        table_standby_replicas=0,
        Table=CoPartitionedTable,
    )
    # faust-streaming 0.15: App.in_transaction is ``in_worker and exactly_once``, and only
    # faust.Worker sets in_worker. We start the app inside our own event loop (beside the
    # API), so without this processing_guarantee="exactly_once" silently runs with no
    # transactions at all (measured: no transaction markers on any topic, and a SIGKILL
    # lost events whose dedup mark had reached the changelog first).
    app.in_worker = True
    return app


def create_app(
    settings: Settings,
    *,
    codec: AvroCodec,
    redis: Redis,
    claim_keys: ClaimKeys,
) -> Pipeline:
    """Build the Faust worker: command (+ reservation) agents per aggregate, whose state is
    in changelog-backed tables, and the identity process manager (``agents/reactions.py``).
    Every read model (``create_projections``: the projection runner, the tracking sinks
    included) and validation (``create_validation``) run on batch consumers.

    Topics must already exist (``connectors.kafka.ensure_topics``); Faust creates only its
    changelog topics, with the same partition count as their source topics.
    """
    app = faust_app(settings)
    p = settings.topic_partitions
    topic_cache: dict[str, Any] = {}

    def topic(name: str) -> Any:
        if name not in topic_cache:
            topic_cache[name] = app.topic(name, partitions=p, **RAW)
        return topic_cache[name]

    # linger 1 ms: a batch is produced whole and then awaited, so waiting to fill a
    # request buys nothing; librdkafka still packs what queues behind one in flight
    kafka = AsyncProducer(
        settings.kafka_bootstrap, client_id=f"{settings.app_id}-commands", **{"linger.ms": 1}
    )
    pipeline = Pipeline(app=app, kafka=kafka)
    for aggregate in AGGREGATES:
        _command_agents(app, settings, aggregate, topic, kafka, codec, claim_keys)
    reactions = ReactionProcessor(
        codec=codec,
        claim_keys=claim_keys,
        topic=topic,
        dead_letters=DeadLetters.to_faust_topic(
            topic(PROSPECT_SPEC.dlq_topic), agent="identity-reactions"
        ),
    )
    _event_agent(app, topic(PROSPECT_SPEC.events_topic), reactions.process, "identity-reactions")

    return pipeline


def _command_agents(
    app: faust.App,
    settings: Settings,
    aggregate: Aggregate,
    topic: Any,
    kafka: AsyncProducer,
    codec: AvroCodec,
    claim_keys: ClaimKeys,
) -> CommandProcessor:
    name = aggregate.spec.aggregate_type
    reservations = (
        topic(aggregate.spec.reservations_topic) if aggregate.spec.reservations_topic else None
    )
    dlq = topic(aggregate.spec.dlq_topic)
    commands = CommandProcessor(
        aggregate=aggregate,
        # bytes (Faust's "raw"): the processor encodes with orjson. Faust's json codec is
        # the stdlib's; both write JSON text, so a changelog written before reads the same
        table=app.Table(
            aggregate.spec.state_table,
            default=None,
            partitions=settings.topic_partitions,
            value_type=bytes,
        ),
        kafka=kafka,
        dead_letters=DeadLetters.to_topic(
            kafka, aggregate.spec.dlq_topic, agent=f"{name}-commands"
        ),
        codec=codec,
        producer=settings.producer_name,
        window=settings.recent_commands_per_aggregate,
        claim_keys=claim_keys,
    )
    batch_agent(
        app,
        topic(aggregate.spec.commands_topic),
        commands.process_batch,
        f"{name}-commands",
        max_records=settings.command_batch_records,
        within_s=settings.command_batch_ms / 1000,
    )
    if reservations is not None and aggregate.spec.claims_table is not None:
        claims_table = app.Table(
            aggregate.spec.claims_table, default=None, partitions=settings.topic_partitions
        )
        claims = ReservationProcessor(
            table=claims_table,
            reservations=reservations,
            commands=topic(aggregate.spec.commands_topic),
            dead_letters=DeadLetters.to_faust_topic(dlq, agent=f"{name}-reservations"),
            replies=commands,
            topic=topic,
            claim_keys=claim_keys,
            roster=RosterKeeper(
                table=claims_table, commands=topic(aggregate.spec.commands_topic), replies=commands
            )
            if aggregate.roster is not None
            else None,
        )
        _event_agent(app, reservations, claims.process, f"{name}-reservations")
    return commands


def _event_agent(app: faust.App, source: Any, handle: Any, name: str) -> None:
    """One event at a time, acked only once ``handle`` returned.

    faust-streaming 0.15 acks the event in hand in the ``finally`` of its stream
    iterator, so an agent cancelled mid-command (a graceful stop, an app restart)
    had that command acked and then committed without its events: a lost command (the
    crash test's fold found users short of an update after a restart). With manual acks
    an interrupted command stays unacked and is delivered again (handling is idempotent).
    """

    async def agent(stream: faust.StreamT) -> None:
        manual = stream.noack()
        async for event in manual.events():
            await handle(event)
            await manual.ack(event)

    app.agent(source, name=name)(agent)


def batch_agent(
    app: faust.App,
    source: Any,
    handle: Callable[[list[Any]], Awaitable[Awaitable[None] | None]],
    name: str,
    *,
    max_records: int,
    within_s: float,
) -> None:
    """Up to ``max_records`` events at a time (or what arrived within ``within_s``),
    acked only once ``handle`` is done with the whole batch.

    ``handle(batch)`` may return a tail: what is left of the batch once its records are
    decided (waiting for the brokers' acks, storing state). The tail runs while the next
    batch is taken and handled; the next tail starts only after it, and a batch is
    acked only after its tail, so acks (and commits) stay in offset order. A handler
    that returns a tail must let the next batch see what the pending tail has not stored
    yet (``CommandProcessor``: its unwritten snapshots). If the agent stops, a tail
    still running is cancelled: its records stay unacked and are delivered again.

    ``faust_fixes.take_batches`` (Faust's ``noack_take`` without its idle loop), because
    ``take_events`` acks its batch in a ``finally``: an agent cancelled mid-batch would
    have acked, and then committed, commands it never handled (the same trap as the
    one-at-a-time iterator, see ``_event_agent``).
    """

    async def finish(tail: Awaitable[None] | None, batch: list[Any], stream: Any) -> None:
        with metrics.timed(metrics.BATCH_SECONDS, name):
            if tail is not None:
                await tail
        for event in batch:
            await stream.ack(event)

    async def agent(stream: faust.StreamT) -> None:
        pending: asyncio.Future[None] | None = None
        tail: Awaitable[None] | None = None
        try:
            async for batch in faust_fixes.take_batches(stream, max_records, within_s):
                metrics.BATCH_RECORDS.labels(name).observe(len(batch))
                tail = await handle(batch)
                if pending is not None:
                    await pending  # raises what the previous tail raised: the agent stops
                pending = asyncio.ensure_future(finish(tail, batch, stream))
            if pending is not None:
                await pending
        finally:
            for running in (pending, tail):
                if isinstance(running, asyncio.Future) and not running.done():
                    running.cancel()

    app.agent(source, name=name)(agent)
