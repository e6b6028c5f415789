"""Command statuses in Redis: ``command.results`` -> ``streamfold:command:<id>``, for
``GET /api/commands/{id}`` after a 202 (kept ``COMMAND_TTL_S``). Setting a result again
writes the same value: replays change nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from connectors.redis import COMMAND_KEY, COMMAND_TTL_S
from pipeline.common import topics
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store
from pipeline.write.codecs import decode_result


def decode(value: bytes) -> dict[str, Any]:
    """A ``command.results`` record as the dict the status route answers with.

    Raises:
        MalformedMessage: not a command result (the runner dead-letters it).
    """
    return decode_result(value).to_dict()


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    assert ctx.pipe is not None
    for d in batch:
        key = ctx.key(COMMAND_KEY.format(command_id=d.value["command_id"]))
        ctx.pipe.set(key, orjson.dumps(d.value), ex=COMMAND_TTL_S)
    return ()


PROJECTION = Projection(
    name="command_status",
    topics=(topics.COMMAND_RESULTS,),
    store=Store.REDIS,
    handle=handle,
    decode=decode,
    keys=(COMMAND_KEY.split("{")[0] + "*",),
    description="each command's result, for GET /api/commands/{id}",
)
