"""The inbound webhook (seed 003, issue 25): other systems send CloudEvents 1.0 to
``POST /api/events/webhook``; each accepted event goes onto ``webhook.events``, whose inbox
(``pipeline/projections/inbound.py``) keeps every ``(source, id)`` once.

What a sender can use:

- **CloudEvents 1.0 over HTTP** (the HTTP protocol binding): structured mode
  (``application/cloudevents+json``), batched mode (``application/cloudevents-batch+json``,
  up to ``MAX_BATCH`` events), binary mode (``ce-*`` headers, the data as the body).
  ``id``, ``source``, ``type`` and ``specversion`` 1.0 are required (an event without an id
  could not be deduplicated), and parsed by the CloudEvents SDK.
- **Event Grid's subscription validation**: ``aeg-event-type: SubscriptionValidation`` with
  the Event Grid event array is answered ``{"validationResponse": <validationCode>}``; the
  CloudEvents webhook validation (``OPTIONS`` with ``WebHook-Request-Origin``) is answered
  with ``WebHook-Allowed-Origin``.
- **A secret per subscription**: ``?subscription=NAME&key=SECRET`` (the query string is
  what an Event Grid endpoint URL carries), checked against ``STREAMFOLD_WEBHOOK_SECRETS``
  in constant time; anything else is a 401 before the body is read.

The answer is 200 ``{"accepted": n}`` once Kafka has every event (acks=all): a sender that
gets it may forget them; one that does not retries, and the inbox absorbs the repeat.
"""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.exceptions import BaseCloudEventException
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import AdminDep, ServicesDep
from api.problems import Problem
from pipeline.common import topics
from pipeline.projections import inbound

router = APIRouter(tags=["webhook"])

PATH = "/api/events/webhook"
MAX_BATCH = 100
REQUIRED = ("specversion", "id", "source", "type")
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


async def _subscription(
    services: ServicesDep,
    subscription: Annotated[str | None, Query(max_length=100)] = None,
    key: Annotated[str | None, Query(max_length=200)] = None,
) -> str:
    """The subscription named and proven by the query string; Problem 401 otherwise."""
    expected = services.settings.webhook_secrets.get(subscription or "")
    given = (key or "").encode()
    if expected is None or not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise Problem(401, "unauthorized", "unknown subscription or wrong key")
    return str(subscription)


Subscription = Annotated[str, Depends(_subscription)]


@router.options(PATH, include_in_schema=False)
async def webhook_validation(request: Request, _subscription: Subscription) -> Response:
    """CloudEvents' webhook validation (HTTP 1.1 Web Hooks for Event Delivery, section 4):
    the sender's ``WebHook-Request-Origin`` is allowed back."""
    origin = request.headers.get("webhook-request-origin")
    if not origin:
        raise Problem(400, "bad-request", "WebHook-Request-Origin is required")
    allowed = {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST"}
    return Response(status_code=200, headers=allowed)


@router.post(PATH)
async def webhook(request: Request, services: ServicesDep, subscription: Subscription) -> Any:
    """CloudEvents in (structured, batched or binary), or Event Grid's subscription
    validation; 200 ``{"accepted": n}`` once on Kafka. 400 unreadable JSON, 415 another
    content type, 422 ``invalid-cloudevent`` (``index``: which event of a batch), 503 when
    Kafka does not take them."""
    body = await request.body()
    if request.headers.get("aeg-event-type", "").lower() == "subscriptionvalidation":
        return {"validationResponse": _validation_code(body)}
    received_at = datetime.now(UTC).isoformat()
    records = [
        {**event, "subscription": subscription, "received_at": received_at}
        for event in _events(request.headers, body)
    ]
    out = services.bus.producer.deliveries()  # a batch's acks awaited once, not one by one
    try:
        for record in records:
            out.produce(topics.WEBHOOK_EVENTS, orjson.dumps(record), key=record["id"].encode())
        await out.wait()
    except Exception as exc:  # KafkaDeliveryError, BufferError: the sender retries
        raise Problem.retry_later(
            "kafka-unavailable", f"the events were not queued: {exc}"
        ) from exc
    return JSONResponse({"accepted": len(records)})


@router.get("/api/admin/inbound-events")
async def inbound_events(
    services: ServicesDep,
    _admin: AdminDep,
    source: Annotated[str, Query(max_length=500)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The newest events the webhook received (of ``source``), each ``(source, id)`` once."""
    return {"items": await inbound.latest(services.clickhouse, source=source, limit=limit)}


def _validation_code(body: bytes) -> str:
    """Event Grid's ``[{"eventType": "...SubscriptionValidationEvent", "data":
    {"validationCode": ...}}]``; Problem 400 for anything else."""
    try:
        [event] = orjson.loads(body)
        code = event["data"]["validationCode"]
    except (ValueError, TypeError, KeyError) as exc:
        raise Problem(400, "bad-validation", f"not an Event Grid validation event: {exc}") from exc
    if not isinstance(code, str):
        raise Problem(400, "bad-validation", "validationCode is not a string")
    return code


def _events(headers: Any, body: bytes) -> list[dict[str, Any]]:
    """The CloudEvents of one request, each as the record the inbox stores."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if any(name.lower().startswith("ce-") for name in headers):
        missing = [a for a in REQUIRED if not headers.get(f"ce-{a}")]
        if missing:
            raise Problem(422, "invalid-cloudevent", f"binary mode without ce-{missing[0]}")
        if headers.get("ce-specversion") != "1.0":
            raise Problem(422, "invalid-cloudevent", "only CloudEvents 1.0 (ce-specversion)")
        message = ce_http.HTTPMessage(dict(headers.items()), body)
        return [_record(_parse(message, 0), headers.get("ce-time"))]
    if kind not in (STRUCTURED, BATCH):
        raise Problem(415, "unsupported-media-type",
                      f"send {STRUCTURED}, {BATCH} or binary mode (ce-* headers)")  # fmt: skip
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", f"the body is not JSON: {exc}") from exc
    items = parsed if kind == BATCH else [parsed]
    if kind == BATCH and not (isinstance(parsed, list) and 1 <= len(parsed) <= MAX_BATCH):
        raise Problem(422, "invalid-cloudevent", f"a batch is a list of 1-{MAX_BATCH} events")
    records = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise Problem(422, "invalid-cloudevent", "an event is a JSON object", index=index)
        missing = [a for a in REQUIRED if not isinstance(item.get(a), str) or not item[a]]
        if missing:
            raise Problem(422, "invalid-cloudevent", f"no {missing[0]}", index=index)
        if item["specversion"] != "1.0":
            raise Problem(422, "invalid-cloudevent", "only CloudEvents 1.0", index=index)
        message = ce_http.HTTPMessage({"content-type": STRUCTURED}, orjson.dumps(item))
        records.append(_record(_parse(message, index), item.get("time")))
    return records


def _parse(message: ce_http.HTTPMessage, index: int) -> Any:
    try:
        return ce_http.from_http_event(message)
    except (BaseCloudEventException, ValueError, TypeError, KeyError) as exc:
        raise Problem(422, "invalid-cloudevent", str(exc)[:500], index=index) from exc


def _record(event: Any, sent_time: str | None) -> dict[str, Any]:
    """What the inbox keeps of ``event``: its attributes (``time`` only as the sender gave
    it: the SDK fills in the present) and its data (bytes as ``data_base64``)."""
    attributes = event.get_attributes()
    data = event.get_data()
    record = {
        "id": attributes["id"],
        "source": attributes["source"],
        "type": attributes["type"],
        "subject": attributes.get("subject"),
        "time": attributes["time"].isoformat() if sent_time and "time" in attributes else None,
        "datacontenttype": attributes.get("datacontenttype"),
    }
    if isinstance(data, bytes):
        return {**record, "data": None, "data_base64": base64.b64encode(data).decode()}
    return {**record, "data": data}
