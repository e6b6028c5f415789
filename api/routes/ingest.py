"""Ingestion for partner SDKs, ours and Segment's: ``POST /v1/batch`` (≤ 1,000 events;
``/v1/b`` is the same route, where analytics.js and Segment's mobile libraries post),
``/v1/track`` (one event), and Segment's single calls ``/v1/identify``, ``/v1/page``,
``/v1/screen``, ``/v1/group``, ``/v1/alias`` (one event of that type), each also under its
first letter (``/v1/t``, ``/v1/p``, ``/v1/i``, ``/v1/s``, ``/v1/g``, ``/v1/a``), where
analytics.js posts them. Bodies are JSON whatever the ``Content-Type`` says: browsers send
``text/plain`` so that a call needs no CORS preflight (``navigator.sendBeacon`` too).

This is the HTTP edge: the body (gzip included), the key, the origin, the rate limit,
Kafka. Both wire shapes, snake_case and Segment's camelCase, go through one decoder
(``pipeline.domain.tracking``).

Authenticated by the system's write key: ``Authorization: Bearer sk_live_…``,
``X-API-Key``, ``Authorization: Basic base64(key + ":")`` or ``writeKey`` in the body
(Segment's two ways). A browser's ``Origin`` must be one the system allows (an empty list
allows all: write keys are public). A 200 ``{"success": true}`` means every accepted event
is durably in Kafka (acks=all, idempotent producer): recorded in ``tracking.events`` when it
passes the partner's structures here (``pipeline.edge.recording``), else in ``tracking.raw``,
where validation takes a second look and dead-letters what it refuses. Per-event problems
(malformed, too large, no user or anonymous id) refuse that event only, the rest of the
batch goes on, and the refused ones are dead-lettered with the reason, so they are listed
per system (``/rejected-events``) beside validation's refusals.

Statuses follow the retry logic of Segment's libraries (segment-analytics-python 2.4
``consumer.py``; analytics-next 1.84 ``shared-dispatcher.js``): 2xx is done, and Segment's
own API answers 200 ``{"success": true}``, so ours does too (a 202 made one SDK log an error
for every batch); 408, 410, 429, 460 and 5xx other than 501/505 are retried, honouring
``Retry-After``; any other 4xx drops the whole batch with a log line. So a batch with
refused events is still a 200 that lists them, never a 4xx that would drop the good ones;
a whole-request 4xx (bad key, not JSON, corrupt gzip, too large) is one a retry cannot fix;
a rate limit (429) and an unavailable Kafka (503) are retried. Error bodies carry
Segment's ``code`` and ``message`` beside the problem+json members (``api.problems``).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import Services, ServicesDep, system_for_key
from api.problems import RETRY_AFTER_S, Problem
from connectors import metrics
from connectors.exceptions import KafkaDeliveryError
from pipeline.domain import jsontext
from pipeline.domain.errors import InvalidValue
from pipeline.domain.tracking import (
    CallType,
    EventRejection,
    RejectReason,
    TrackedEvent,
    decode_events,
    read_request,
)
from pipeline.projections.partner_keys.lookups import SystemKey

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1", tags=["ingestion"])

MAX_BATCH_EVENTS = 1000
_GZIP = frozenset({"gzip", "x-gzip"})  # RFC 9110 8.4.1.3: x-gzip is an alias of gzip
_IDENTITY = frozenset({"", "identity"})
# A single call's refused event, by reason; any other reason is a 400.
_REJECTION_STATUS = {RejectReason.TOO_LARGE: 413, RejectReason.TIMESTAMP_OUT_OF_RANGE: 422}


def gunzip(data: bytes, limit: int) -> bytes:
    """The decompressed ``data`` (RFC 1952 gzip; members one after another are concatenated,
    as gzip does), refused past ``limit`` bytes.

    Incremental: zlib is asked for at most ``limit + 1`` bytes, so a decompression bomb
    (kilobytes that inflate to gigabytes) costs at most that much memory and work.
    Raises ``Problem`` 413 ``too-large`` past the limit, 400 ``malformed-gzip`` for data
    that is not gzip, fails its CRC or is cut short.
    """
    out = bytearray()
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
        try:
            # max_length >= 1 here (0 would mean "no limit"): out never passes limit below.
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise Problem(400, "malformed-gzip", f"the body is not valid gzip: {exc}") from exc
        if len(out) > limit:
            raise Problem(413, "too-large", f"the decompressed body is over {limit} bytes")
        if not inflater.eof:
            raise Problem(400, "malformed-gzip", "the gzip body is cut short")
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


async def _json_body(request: Request, limit: int) -> Any:
    """The request body as JSON, after ``Content-Encoding`` (gzip or none). The limit
    applies to what is parsed: the body as sent and, for gzip, decompressed."""
    raw = await request.body()
    if len(raw) > limit:
        raise Problem(413, "too-large", f"body is {len(raw)} bytes; the limit is {limit}")
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in _GZIP:
        raw = gunzip(raw, limit)
    elif encoding not in _IDENTITY:
        message = f"Content-Encoding {encoding!r} is not supported; send gzip or none"
        raise Problem(415, "unsupported-encoding", message)
    try:
        return jsontext.loads(raw)
    except RecursionError as exc:
        # nesting deeper than the parser's stack: still a malformed request, and Python's
        # own message ("maximum recursion depth exceeded ...") says nothing to the client
        raise Problem(400, "malformed-json", "request body is nested too deeply") from exc
    except ValueError as exc:  # the message names the line and column: for the client
        raise Problem(400, "malformed-json", f"request body is not valid JSON: {exc}") from exc


async def _decode(request: Request, services: Services, call_type: CallType | None) -> Decoded:
    body = await _json_body(request, services.settings.max_body_bytes)
    try:
        sdk_request = read_request(body, call_type)
    except InvalidValue as exc:
        raise Problem(400, "malformed", exc.message) from exc
    system = await system_for_key(request, services, write_key=sdk_request.write_key)
    if len(sdk_request.events) > MAX_BATCH_EVENTS:
        raise Problem(
            413,
            "too-many-events",
            f"batch has {len(sdk_request.events)} events; the limit is {MAX_BATCH_EVENTS}",
        )
    await _charge(services, system, len(sdk_request.events))
    received_at = datetime.now(UTC)
    parsed = decode_events(
        sdk_request,
        system_id=system.system_id,
        partner_id=system.partner_id,
        received_at=received_at,
    )
    refused = Counter(str(p.reason) for p in parsed if isinstance(p, EventRejection))
    for reason, count in refused.items():
        metrics.TRACKING_EVENTS.labels("ingest", "rejected", reason).inc(count)
    return Decoded(system, sdk_request.events, parsed, received_at)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One request's events: as sent (``raw``) and decoded (``parsed``, in the same
    order), from ``system``, received at ``received_at``."""

    system: SystemKey
    raw: list[Any]
    parsed: list[TrackedEvent | EventRejection]
    received_at: datetime

    @property
    def accepted(self) -> list[TrackedEvent]:
        return [p for p in self.parsed if isinstance(p, TrackedEvent)]

    @property
    def refused(self) -> list[tuple[Any, EventRejection]]:
        return [(r, p) for r, p in zip(self.raw, self.parsed, strict=True)
                if isinstance(p, EventRejection)]  # fmt: skip


async def _charge(services: Services, system: SystemKey, events: int) -> None:
    """Charge a request's events, accepted or not (a request without events costs one), to
    the system's and the partner's rate limits before any event is decoded: a flood of
    invalid events costs its sender like valid ones.

    Raises ``Problem`` 429 ``rate-limited`` with ``Retry-After`` (whole seconds, >= 1) and
    ``limit`` ("system" or "partner": which bucket ran dry). RFC 9457 problem+json.
    """
    decision = await services.ingest.charge(system, max(1, events))
    if decision.allowed:
        return
    retry = max(1, round(decision.retry_after_s + 0.5))
    whose = "this partner's systems" if decision.limited_by == "partner" else "this key"
    raise Problem(
        429,
        "rate-limited",
        f"rate limit for {whose} exceeded; retry in {retry} s",
        headers={"Retry-After": str(retry)},
        limit=decision.limited_by,
    )


async def _admit(services: Services, decoded: Decoded) -> None:
    """Produce the request's accepted events and its refusals (``tracking.dlq``, listed at
    ``/rejected-events``) and wait for every ack. Raises ``Problem`` 503 with
    ``Retry-After`` when Kafka did not take them all: the SDK retries the request."""
    accepted, refused = decoded.accepted, decoded.refused
    if not accepted and not refused:
        return
    try:
        recorded = await services.ingest.publish(
            accepted, refused, system=decoded.system, received_at=decoded.received_at
        )
        metrics.TRACKING_EVENTS.labels("ingest", "accepted", "").inc(len(accepted))
        # validation's verdict, made here; the rest get theirs from the validation consumer
        metrics.TRACKING_EVENTS.labels("validation", "accepted", "").inc(recorded)
    except (KafkaDeliveryError, BufferError) as exc:
        # the client learns to retry; the driver's text (brokers, internals) goes to the log
        log.warning("tracking events not stored", events=len(accepted), error=repr(exc))
        raise Problem(
            503,
            "kafka-unavailable",
            "events not stored: Kafka did not acknowledge them; retry shortly",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from exc


def _single(call_type: CallType) -> Callable[..., Awaitable[Response]]:
    async def route(request: Request, services: ServicesDep) -> Response:
        decoded = await _decode(request, services, call_type)
        await _admit(services, decoded)
        (result,) = decoded.parsed
        if isinstance(result, EventRejection):
            # 422: well-formed, but a time the store does not hold (the message names the
            # accepted range); a retry of the same event cannot succeed either
            status = _REJECTION_STATUS.get(result.reason, 400)
            slug = result.reason.replace("_", "-")
            raise Problem(status, slug, result.message, reason=result.reason)
        return _json(200, {"success": True, "message_id": result.message_id,
                           "status": "accepted"})  # fmt: skip

    route.__name__ = call_type.value
    route.__doc__ = (
        f"One {call_type} call (Segment's ``/v1/{call_type}``, also ``/v1/{call_type.value[0]}`` "
        'where analytics.js posts it). 200 ``{"success": true, "message_id"}``; 400 '
        f"malformed, missing ids or a ``type`` other than {call_type}; 413 too large; 422 a "
        "timestamp outside the stored range (the message names it); refused events are "
        "also listed at ``/rejected-events``. 401 unknown or revoked key; 403 a read "
        "token, or an ``Origin`` the system does not allow; 429 rate limited."
    )
    return route


for _call_type in CallType:
    _route = _single(_call_type)
    router.add_api_route(f"/{_call_type}", _route, methods=["POST"], status_code=200)
    # analytics.js (analytics-next 1.x, plugins/segmentio) posts to the type's first letter
    router.add_api_route(f"/{_call_type.value[0]}", _route, methods=["POST"], status_code=200,
                         include_in_schema=False, name=f"{_call_type}_short")  # fmt: skip


@router.post("/batch", status_code=200)
@router.post("/b", status_code=200, include_in_schema=False)
async def batch(request: Request, services: ServicesDep) -> Response:
    """``{"batch": [event, …], "writeKey"?, "sentAt"?, "context"?}`` (or a bare list), at
    most 1,000 events and 1 MiB (decompressed). Events name their ``type`` (default track).

    200 ``{"success": true, "accepted", "rejected", "results"}`` once every accepted
    event is in Kafka (Segment's answer, which SDKs read as success), with a result per
    event, in order: ``{"index", "message_id", "status": "accepted"}`` or ``{"index",
    "status": "rejected", "reason", "message"}``. Refused events are listed at
    ``/rejected-events`` too (an SDK does not read this body).
    """
    decoded = await _decode(request, services, None)
    await _admit(services, decoded)
    results: list[dict[str, Any]] = []
    for index, p in enumerate(decoded.parsed):
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
    accepted = len(decoded.accepted)
    body = {"success": True, "accepted": accepted, "rejected": len(results) - accepted,
            "results": results}  # fmt: skip
    return _json(200, body)


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(jsontext.dumps(body), status_code=status, media_type="application/json")
