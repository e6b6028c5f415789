"""The inbound webhook (issue 25, seed 003): CloudEvents 1.0 over HTTP in every mode, Event
Grid's and CloudEvents' validation handshakes, a secret per subscription, and an inbox that
keeps each (source, id) once however often it is sent."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.support import PROBLEM, ServeProcess, wait_for

pytestmark = pytest.mark.e2e

CE, CE_BATCH = "application/cloudevents+json", "application/cloudevents-batch+json"
AUTH = {"subscription": "crm", "key": "crm-webhook-secret-1"}  # tests/conftest.py


def event(source: str, **over: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": source,
            "type": "com.example.crm.lead.created", "time": "2026-12-07T10:00:00Z",
            "subject": "lead/42", "data": {"name": "Ada"}, **over}  # fmt: skip


def send(server: ServeProcess, body: Any, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.settings.api_url}/api/events/webhook", params=AUTH,
        content=orjson.dumps(body), headers={"content-type": content_type, **headers},
        timeout=30,
    )  # fmt: skip


def test_only_a_known_subscription_with_its_key_may_send(server: ServeProcess) -> None:
    url = f"{server.settings.api_url}/api/events/webhook"
    body = orjson.dumps(event("/crm"))
    for params in ({}, {**AUTH, "key": "wrong"}, {**AUTH, "subscription": "other"}):
        answer = httpx.post(url, params=params, content=body,
                            headers={"content-type": "application/cloudevents+json"})  # fmt: skip
        assert answer.status_code == 401 and answer.headers["content-type"] == PROBLEM


def test_the_validation_handshakes_are_answered(server: ServeProcess) -> None:
    validation = [{"id": "v1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "subject": "", "eventTime": "2026-12-07T10:00:00Z", "dataVersion": "1",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]  # fmt: skip
    answer = send(
        server, validation, "application/json", **{"aeg-event-type": "SubscriptionValidation"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    options = httpx.options(f"{server.settings.api_url}/api/events/webhook", params=AUTH,
                            headers={"WebHook-Request-Origin": "eventgrid.azure.net"})  # fmt: skip
    assert options.status_code == 200, options.text
    assert options.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_every_mode_lands_in_the_inbox_once(server: ServeProcess, admin: httpx.Client) -> None:
    source = f"/crm/{uuid.uuid4().hex[:8]}"
    structured = event(source)
    for _ in range(3):  # a sender retrying: three deliveries of one event
        answer = send(server, structured, "application/cloudevents+json")
        assert answer.status_code == 200 and answer.json() == {"accepted": 1}, answer.text
    batch = [event(source, type="com.example.crm.lead.updated"), event(source)]
    assert send(server, batch, "application/cloudevents-batch+json").json() == {"accepted": 2}
    binary_id = str(uuid.uuid4())
    binary = httpx.post(
        f"{server.settings.api_url}/api/events/webhook", params=AUTH, content=b'{"name": "Bo"}',
        headers={"content-type": "application/json", "ce-specversion": "1.0", "ce-id": binary_id,
                 "ce-source": source, "ce-type": "com.example.crm.lead.created"},
    )  # fmt: skip
    assert binary.status_code == 200, binary.text

    def inbox() -> list[dict[str, Any]] | None:
        answer = admin.get("/api/admin/inbound-events", params={"source": source})
        assert answer.status_code == 200, answer.text
        items = answer.json()["items"]
        return items if len(items) >= 4 else None

    wait_for(inbox, timeout_s=30, what="the four events in the inbox")
    wait_for(server.drained, timeout_s=30, what="every consumer caught up")
    items = admin.get("/api/admin/inbound-events", params={"source": source}).json()["items"]
    ids = sorted(i["event_id"] for i in items)
    assert ids == sorted([structured["id"], *(e["id"] for e in batch), binary_id])
    [first] = [i for i in items if i["event_id"] == structured["id"]]
    assert (first["subject"], first["data"], first["subscription"]) == (
        "lead/42",
        {"name": "Ada"},
        "crm",
    )


@pytest.mark.parametrize(
    ("body", "content_type", "status", "kind"),
    [
        ({k: v for k, v in event("/crm").items() if k != "id"}, CE, 422, "invalid-cloudevent"),
        (event("/crm", specversion="0.3"), CE, 422, "invalid-cloudevent"),
        (event("/crm", time="not a time"), CE, 422, "invalid-cloudevent"),
        ({"not": "a batch"}, CE_BATCH, 422, "invalid-cloudevent"),
        ([event("/crm"), 7], CE_BATCH, 422, "invalid-cloudevent"),
        (event("/crm"), "text/plain", 415, "unsupported-media-type"),
    ],
)
def test_a_bad_event_gets_a_precise_problem_and_nothing_is_kept(
    server: ServeProcess, body: Any, content_type: str, status: int, kind: str
) -> None:
    answer = send(server, body, content_type)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"] == f"/problems/{kind}"
