"""The validation role: ``tracking.raw`` (what the API could not record itself) ->
``tracking.events`` or ``tracking.dlq``. Scales by count (a consumer group)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from deploy.roles.batches import run_batches
from pipeline.common.settings import Settings
from pipeline.edge.validation import create_validation
from schemas.codec import AvroCodec


async def run(settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec) -> None:
    """Validate ``tracking.raw`` batches until ``stop`` is set; re-raises a consumer's
    failure (:func:`deploy.roles.batches.run_batches`)."""
    await run_batches(stop, [create_validation(settings, codec=codec, redis=redis)])
