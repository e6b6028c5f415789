"""Ingestion for partner SDKs, ours and Segment's: ``POST /v1/batch`` (≤ 1,000 events;
``/v1/b`` is the same route, where analytics.js and Segment's mobile libraries post),
``/v1/track`` (one event), and Segment's single calls ``/v1/identify``, ``/v1/page``,
``/v1/screen``, ``/v1/group``, ``/v1/alias`` (one event of that type), each also under its
first letter (``/v1/t``, ``/v1/p``, ``/v1/i``, ``/v1/s``, ``/v1/g``, ``/v1/a``), where
analytics.js posts them. Bodies are JSON whatever the ``Content-Type`` says: browsers send
``text/plain`` so that a call needs no CORS preflight (``navigator.sendBeacon`` too).

Thin: a route reads what only HTTP knows (the key in the headers, ``Origin``,
``Content-Encoding``) and hands the request to ``pipeline.edge.ingest.Ingest.accept``,
which decides everything else and says why in its docstring. Authenticated by the system's
write key: ``Authorization: Bearer sk_live_…``, ``X-API-Key``, ``Authorization: Basic
base64(key + ":")`` or ``writeKey`` in the body (Segment's two ways). Error bodies carry
Segment's ``code`` and ``message`` beside the problem+json members (``api.problems``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ServicesDep, header_key
from pipeline.domain.tracking import CallType
from pipeline.edge.ingest import SdkCall

router = APIRouter(prefix="/v1", tags=["ingestion"])


async def _accept(request: Request, services: ServicesDep, call_type: CallType | None) -> Response:
    call = SdkCall(
        body=await request.body(),
        content_encoding=request.headers.get("content-encoding", "").strip().lower(),
        key=header_key(request),
        origin=request.headers.get("origin"),
        call_type=call_type,
    )
    reply = await services.ingest.accept(call)
    return Response(reply.body, status_code=reply.status, media_type="application/json")


def _single(call_type: CallType) -> Callable[..., Awaitable[Response]]:
    async def route(request: Request, services: ServicesDep) -> Response:
        return await _accept(request, services, call_type)

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
    return await _accept(request, services, None)
