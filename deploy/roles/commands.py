"""The commands role: the Faust command agents, deciding commands against their
changelog-backed tables. Scales by count up to the partition count (Faust's assignor)."""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis

from deploy.secrets import claim_keys
from pipeline.common.settings import Settings
from pipeline.write.app import create_app
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)


async def run(settings: Settings, stop: asyncio.Event, redis: Redis, codec: AvroCodec) -> None:
    """Run the Faust app (command agents and their tables) until ``stop`` is set, then
    stop it: the batch in hand finishes, offsets are committed, the group is left."""
    keys = await asyncio.to_thread(claim_keys, settings)
    pipeline = create_app(settings, codec=codec, redis=redis, claim_keys=keys)
    await pipeline.app.start()
    log.info("commands started", guarantee=settings.processing_guarantee)
    try:
        await stop.wait()
    finally:
        await pipeline.app.stop()
        await asyncio.to_thread(pipeline.kafka.close)
