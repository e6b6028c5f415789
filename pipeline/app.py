"""The Faust app: tables, topics and agents, built from settings by ``create_app``.

No module-level app: each entrypoint (serve, worker, tests) builds its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from redis.asyncio import Redis

from connectors.clickhouse import ClickHouse
from pipeline import topics
from pipeline.agents.commands import CommandProcessor
from pipeline.agents.deadletter import DeadLetters
from pipeline.agents.projections import (
    CommandStatusProjection,
    EventLogProjection,
    Projector,
    UsersReadModel,
)
from pipeline.agents.reservations import ReservationProcessor
from pipeline.domain.users import USER_SPEC
from pipeline.settings import Settings
from schemas.codec import AvroCodec

RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}

USER_STATE_TABLE = "users-state"
USER_CLAIMS_TABLE = "users-claims"


@dataclass(frozen=True)
class Pipeline:
    app: faust.App
    commands: CommandProcessor
    reservations: ReservationProcessor


def create_app(
    settings: Settings, *, codec: AvroCodec, clickhouse: ClickHouse, redis: Redis
) -> Pipeline:
    """Build the worker: command + reservation agents and the projection agents.

    Topics must already exist (``connectors.kafka.ensure_topics``); Faust creates only its
    changelog topics, with the same partition count as their source topics.
    """
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
        # under exactly_once a commit ends the open transactions: read_committed readers
        # (the API waiting for a result, projections) see output only after it.
        broker_commit_interval=settings.commit_interval_ms / 1000,
        web_enabled=False,
        autodiscover=False,
        table_standby_replicas=0,
    )
    p = settings.topic_partitions
    t_commands = app.topic(topics.USER_COMMANDS, partitions=p, **RAW)
    t_reservations = app.topic(topics.USER_RESERVATIONS, partitions=p, **RAW)
    t_events = app.topic(topics.USER_EVENTS, partitions=p, **RAW)
    t_results = app.topic(topics.COMMAND_RESULTS, partitions=p, **RAW)
    t_dlq = app.topic(topics.USER_DLQ, partitions=p, **RAW)

    state = app.Table(USER_STATE_TABLE, default=None, partitions=p)
    claims = app.Table(USER_CLAIMS_TABLE, default=None, partitions=p)

    commands = CommandProcessor(
        spec=USER_SPEC,
        table=state,
        events=t_events,
        results=t_results,
        reservations=t_reservations,
        dead_letters=DeadLetters(t_dlq, agent="user-commands"),
        codec=codec,
        producer=settings.producer_name,
        window=settings.recent_commands_per_aggregate,
        await_acks=settings.processing_guarantee == "at_least_once",
    )
    reservations = ReservationProcessor(
        table=claims,
        reservations=t_reservations,
        commands=t_commands,
        dead_letters=DeadLetters(t_dlq, agent="user-reservations"),
        replies=commands,
    )
    projector = Projector(
        codec=codec,
        projections=[EventLogProjection(clickhouse), UsersReadModel(clickhouse)],
        dead_letters=DeadLetters(t_dlq, agent="users-projections"),
    )
    status = CommandStatusProjection(redis, DeadLetters(t_dlq, agent="command-status"))
    batch_rows, within_s = settings.projection_batch_rows, settings.projection_batch_ms / 1000

    @app.agent(t_commands, name="user-commands")
    async def user_commands(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await commands.process(event)

    @app.agent(t_reservations, name="user-reservations")
    async def user_reservations(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await reservations.process(event)

    @app.agent(t_events, name="users-projections")
    async def users_projections(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(batch_rows, within=within_s):
            await projector.run_batch(batch)

    @app.agent(t_results, name="command-status")
    async def command_status(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(batch_rows, within=within_s):
            await status.run_batch(batch)

    return Pipeline(app=app, commands=commands, reservations=reservations)
