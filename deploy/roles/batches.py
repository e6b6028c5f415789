"""Running batch pipelines (``connectors.batch.BatchPipeline``) in a role's process: the
sinks role runs several, the validation role one."""

from __future__ import annotations

import asyncio

import structlog

from connectors.batch import BatchPipeline

log = structlog.get_logger(__name__)


async def run_batches(stop: asyncio.Event, stages: list[BatchPipeline]) -> None:
    """Run batch pipelines until ``stop``; a failed one stops the rest and re-raises."""
    batch_stop = asyncio.Event()
    tasks = [asyncio.create_task(stage.run(batch_stop)) for stage in stages]
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        batch_stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            log.error("batch consumers failed; stopping", error=repr(result))
            raise result
