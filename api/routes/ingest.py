"""Ingestion for partner SDKs: ``POST /v1/track`` (one event), ``POST /v1/batch`` (≤ 1,000).

Authenticated by the system's API key (``Authorization: Bearer sk_live_…`` or
``X-API-Key``). A 202 means every accepted event is durably in ``tracking.raw``
(acks=all, idempotent producer); schema validation happens downstream (rejected
events are queryable per system). Per-event problems (malformed, too large, no user or
anonymous id) reject that event only; the rest of the batch goes on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ServicesDep, SystemDep
from api.problems import Problem
from connectors.exceptions import KafkaDeliveryError
from pipeline.domain.tracking import EventRejection, TrackedEvent, parse_sdk_event

router = APIRouter(prefix="/v1", tags=["ingestion"])

MAX_BATCH_EVENTS = 1000


async def _body(request: Request, limit: int) -> Any:
    raw = await request.body()
    if len(raw) > limit:
        raise Problem(413, "too-large", f"body is {len(raw)} bytes; the limit is {limit}")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Problem(400, "malformed-json", f"request body is not valid JSON: {exc}") from exc


def _parse(
    raw_events: list[Any], system: Any, now: datetime
) -> list[TrackedEvent | EventRejection]:
    parsed = []
    for raw in raw_events:
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())
        parsed.append(
            parse_sdk_event(
                raw,
                system_id=system.system_id,
                partner_id=system.partner_id,
                received_at=now,
                raw_size=size,
            )
        )
    return parsed


async def _admit(services: Any, system: Any, accepted: list[TrackedEvent]) -> None:
    if not accepted:
        return
    ingest = services.ingest
    decision = await ingest.buckets.take(system.system_id, cost=len(accepted))
    if not decision.allowed:
        retry = max(1, round(decision.retry_after_s + 0.5))
        raise Problem(
            429,
            "rate-limited",
            f"rate limit for this key exceeded; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
    try:
        await ingest.publish(accepted)
    except (KafkaDeliveryError, BufferError) as exc:
        raise Problem(503, "kafka-unavailable", f"events not stored, retry: {exc}") from exc


@router.post("/track", status_code=202)
async def track(request: Request, system: SystemDep, services: ServicesDep) -> JSONResponse:
    """One event. 202 ``{"message_id"}``; 400 malformed or missing ids; 413 too large;
    401 unknown or revoked key; 429 rate limited."""
    body = await _body(request, services.settings.max_body_bytes)
    (result,) = _parse([body], system, datetime.now(UTC))
    if isinstance(result, EventRejection):
        status = 413 if result.reason == "too_large" else 400
        raise Problem(status, result.reason.replace("_", "-"), result.message, reason=result.reason)
    await _admit(services, system, [result])
    return JSONResponse({"message_id": result.message_id, "status": "accepted"}, status_code=202)


@router.post("/batch", status_code=202)
async def batch(request: Request, system: SystemDep, services: ServicesDep) -> JSONResponse:
    """``{"batch": [event, …]}`` (or a bare list), at most 1,000 events and 1 MiB.

    202 with a result per event, in order: ``{"index", "message_id", "status":
    "accepted"}`` or ``{"index", "status": "rejected", "reason", "message"}``.
    """
    body = await _body(request, services.settings.max_body_bytes)
    events = body.get("batch") if isinstance(body, dict) else body
    if not isinstance(events, list):
        raise Problem(400, "malformed", 'expected {"batch": [events]} or a JSON array')
    if len(events) > MAX_BATCH_EVENTS:
        raise Problem(
            413,
            "too-many-events",
            f"batch has {len(events)} events; the limit is {MAX_BATCH_EVENTS}",
        )
    parsed = _parse(events, system, datetime.now(UTC))
    accepted = [p for p in parsed if isinstance(p, TrackedEvent)]
    await _admit(services, system, accepted)
    results: list[dict[str, Any]] = []
    for index, p in enumerate(parsed):
        if isinstance(p, TrackedEvent):
            results.append({"index": index, "message_id": p.message_id, "status": "accepted"})
        else:
            results.append(
                {
                    "index": index,
                    "status": "rejected",
                    "reason": str(p.reason),
                    "message": p.message,
                }
            )
    return JSONResponse(
        {"accepted": len(accepted), "rejected": len(parsed) - len(accepted), "results": results},
        status_code=202,
    )
