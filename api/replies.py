"""Turning a command's result into an HTTP answer, the same way for every command route."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi.responses import JSONResponse

from api import correlation, idempotency
from api.deps import Services
from api.problems import Problem
from connectors.exceptions import KafkaDeliveryError
from pipeline.domain.handling import CommandResult
from pipeline.domain.results import RejectionReason
from pipeline.write.routing import command_id_for, new_aggregate_id

log = structlog.get_logger(__name__)

ReadModelVersion = Callable[[str], Awaitable[int]]
"""aggregate id -> the aggregate version a read model has applied (0: none yet)."""

STATUS_FOR_REASON = {
    RejectionReason.INVALID: 422,
    RejectionReason.NOT_FOUND: 404,
    RejectionReason.ALREADY_EXISTS: 409,
    RejectionReason.CONFLICT: 409,
    RejectionReason.DELETED: 409,
    RejectionReason.INVALID_STATE: 409,
    RejectionReason.DUPLICATE_EMAIL: 409,
    RejectionReason.DUPLICATE_USERNAME: 409,
    RejectionReason.FORBIDDEN: 403,
    RejectionReason.USER_INACTIVE: 409,
    RejectionReason.LAST_ADMIN: 409,
}


def command_fields(
    idempotency_key: str | None, aggregate_id: str, actor: str, expected: int | None = None
) -> dict[str, Any]:
    """The fields every command carries, for a route building one. ``actor`` is the user
    id of the caller: it scopes ``idempotency_key`` (``pipeline.write.routing.command_id_for``)
    and decides who may read the result later (``api/routes/commands.py``). The correlation
    id is the request's (``api/correlation.py``), or the command's own outside a request."""
    command_id = command_id_for(idempotency_key, caller=actor)
    return {
        "command_id": command_id,
        "aggregate_id": aggregate_id or new_aggregate_id(command_id),
        "issued_at": datetime.now(UTC),
        "expected_version": expected,
        "correlation_id": correlation.current() or command_id,
        "actor": actor,
    }


def outcome_body(result: CommandResult) -> dict[str, Any]:
    return {
        "command_id": result.command_id,
        "id": result.aggregate_id,
        "version": result.version,
        "event_ids": list(result.event_ids),
    }


def raise_rejection(result: CommandResult) -> None:
    """Raises Problem for a rejected result (409/404/422 by reason); returns if accepted."""
    if result.status == "accepted":
        return
    reason = result.reason or RejectionReason.INVALID.value
    status = STATUS_FOR_REASON.get(RejectionReason(reason), 409)
    raise Problem(
        status,
        reason.replace("_", "-"),
        result.message or reason,
        reason=reason,
        field=result.field,
        command_id=result.command_id,
        id=result.aggregate_id,
    )


async def submit(services: Services, command: Any) -> CommandResult | None:
    """Submit and wait; None when no result came in time. A resend of a request with an
    ``Idempotency-Key`` is answered with the first result (``duplicate``) without sending
    anything (``api/idempotency.py``). Raises Problem 503 if Kafka did not take the
    command, 422 ``idempotency-key-reused`` for a key that came with another request."""
    first = await idempotency.first_answer(services.redis, command.command_id)
    if first is not None:
        return first
    try:
        return await services.bus.submit(command)
    except (KafkaDeliveryError, BufferError) as exc:
        raise Problem.retry_later(
            "kafka-unavailable",
            "the command was not queued: Kafka did not acknowledge it; retry shortly",
        ) from exc


def pending(command: Any) -> JSONResponse:
    return JSONResponse(
        {"command_id": command.command_id, "status": "pending", "id": command.aggregate_id},
        status_code=202,
        headers={"Location": f"/api/commands/{command.command_id}"},
    )


async def until_applied(
    services: Services, result: CommandResult, read_version: ReadModelVersion
) -> bool:
    """Read-your-writes: return once the read model has applied ``result.version`` of its
    aggregate, so what the answer shows (an API key, a new state) is usable by the next
    request. Polls every 10-100 ms for at most the command timeout; True when applied,
    False (logged) when the read model lags longer: the command stands either way, and
    ``/readyz`` shows the lag."""
    deadline = time.monotonic() + services.settings.command_timeout_s
    delay = 0.01
    while await read_version(result.aggregate_id) < result.version:
        if time.monotonic() >= deadline:
            log.warning(
                "read model behind the answer",
                aggregate_id=result.aggregate_id,
                version=result.version,
            )
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


async def run_command(
    services: Services,
    command: Any,
    *,
    success_status: int = 200,
    read_model: ReadModelVersion | None = None,
    location: str | None = None,
) -> JSONResponse:
    """Submit ``command``, wait up to the configured time, answer.

    201/200 with the outcome; 409/404/422 problem for a rejection; 202 with ``Location:
    /api/commands/{command_id}`` when no result came in time (the command is durably in
    Kafka and will be processed); 503 if Kafka did not take the command. With
    ``read_model``, an accepted command is answered once that read model has applied it
    (:func:`until_applied`). ``location``: the path of what the command made, ``{id}``
    standing for its aggregate id, sent as ``Location`` with the answer (RFC 9110 15.3.2:
    a 201 names the resource it created).
    """
    result = await submit(services, command)
    if result is None:
        return pending(command)
    raise_rejection(result)
    if read_model is not None:
        await until_applied(services, result, read_model)
    headers = {"Location": location.format(id=result.aggregate_id)} if location else None
    return JSONResponse(outcome_body(result), status_code=success_status, headers=headers)
