"""The read side from settings: every read model (built in and plugged in) on the
projection runner, with what its handlers need (``Deps``)."""

from __future__ import annotations

from redis.asyncio import Redis

from connectors.clickhouse import ClickHouse
from connectors.kafka import AsyncProducer
from pipeline.common import compiled, topics
from pipeline.common.deadletter import DeadLetters
from pipeline.common.settings import Settings
from pipeline.projections import registry, timelines
from pipeline.projections.runner import Deps, ProjectionRunner
from pipeline.projections.tracking.sink import REJECTIONS, SINK
from schemas.codec import AvroCodec


def create_projections(
    settings: Settings,
    *,
    codec: AvroCodec,
    clickhouse: ClickHouse,
    redis: Redis,
    staging: ClickHouse,
) -> ProjectionRunner:
    """Every read model (built-in and plugged in) on the projection runner
    (``pipeline/projections/runner.py``); poison records to ``projections.dlq``.
    ``staging``: the tracking sink's own client, opened with a session (its temporary
    staging table lives there; ``TrackingSink._staged``).

    Raises:
        PluginError: a configured or installed plugin does not load.
    """
    producer = AsyncProducer(settings.kafka_bootstrap, client_id=f"{settings.app_id}-projections")
    projections = registry.discover(settings.projection_plugins)
    tracking_batch = (settings.tracking_batch_rows, settings.tracking_batch_ms / 1000)
    deps = Deps(
        app_id=settings.app_id,
        bootstrap=settings.kafka_bootstrap,
        clickhouse=clickhouse,
        redis=redis,
        codec=codec,
        dead_letters=DeadLetters.to_topic(producer, topics.PROJECTIONS_DLQ, agent="projections"),
        batch_rows=settings.projection_batch_rows,
        batch_wait_s=settings.projection_batch_ms / 1000,
        # the tracking sink waits longer for bigger ClickHouse inserts (fewer parts to
        # merge), but not so long that an event waits for it more than the rest of its way
        batches={
            # a plugin over tracking.events runs one statement a batch, like the sink
            # (pipeline/projections/tracking/plugins.py): small batches would put it behind
            **{p.name: tracking_batch for p in projections if topics.TRACKING_EVENTS in p.topics},
            SINK.name: tracking_batch,
            REJECTIONS.name: (settings.rejections_batch_rows, settings.rejections_batch_ms / 1000),
            # a chirp is pushed to live feeds once projected: short waits
            timelines.PROJECTION.name: (
                settings.projection_batch_rows,
                settings.timelines_batch_ms / 1000,
            ),
        },
        producer=producer,
        staging=staging,
        dedup_window_s=settings.dedup_window_s,
        core=compiled.load(settings.edge_core),
        timelines=settings.timelines,
    )
    return ProjectionRunner(projections, deps=deps, producer=producer)
