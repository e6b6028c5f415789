"""The official Segment Python SDK (segment-analytics-python), unmodified, against the stack.

Two clients share one system's key as their write key: one posts straight to the API, the
other gzips its batches and goes through a proxy that stores its first batch but answers
503, as a lost response would look, so the SDK really retries the same batch (its
``X-Retry-Count`` header shows it). The client's clock runs an hour ahead (its ``sentAt``),
so the stored times show the skew correction. Every call type goes in; every message must
come out of ClickHouse ``tracking_events`` exactly once, under its SDK-made messageId.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from segment.analytics import Client
from segment.analytics import request as sdk_request

from tests.e2e.test_tracking import key_works, new_system
from tests.support import LoopbackServer, QuietHandler, ServeProcess, sql, wait_for

pytestmark = pytest.mark.integration

HISTORIC = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)  # the times the app passes, client clock
SKEW = timedelta(hours=1)  # the client's clock is this far ahead of the server's


class _LossyProxy(LoopbackServer):
    """Forwards to ``upstream``; the first ``lose`` successful answers become a 503."""

    def __init__(self, upstream: str, lose: int) -> None:
        super().__init__(_Forward)
        self.upstream, self.lose = upstream, lose
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _Forward(QuietHandler):
    server: _LossyProxy

    def do_POST(self) -> None:  # the name http.server dispatches to
        body = self.rfile.read(int(self.headers["Content-Length"]))
        forwarded = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        answer = httpx.post(self.server.upstream + self.path, content=body, headers=forwarded)
        status, content = answer.status_code, answer.content
        with self.server.lock:
            self.server.seen.append(
                {"path": self.path, "status": status, "retry": self.headers.get("X-Retry-Count"),
                 "encoding": self.headers.get("Content-Encoding")}
            )  # fmt: skip
            if self.server.lose and 200 <= status < 300:
                self.server.lose -= 1
                status, content = 503, b'{"code": "lost", "message": "response lost"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


class _ClientClock(datetime):
    """What ``datetime`` is to the SDK's request module: a clock ``SKEW`` ahead."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + SKEW


@pytest.fixture
def proxy(server: ServeProcess) -> Iterator[_LossyProxy]:
    lossy = _LossyProxy(server.settings.api_url, lose=1)
    thread = threading.Thread(target=lossy.serve_forever, daemon=True)
    thread.start()
    yield lossy
    lossy.shutdown()
    lossy.server_close()


def _calls(client: Client, tag: str) -> dict[str, dict[str, Any]]:
    """Every Segment call type once; messageId -> what ClickHouse must hold for it."""
    at = {"timestamp": HISTORIC}
    sent = [
        (client.track(user_id=f"u-{tag}", event="Order Completed",
                      properties={"total": 9.5}, **at),
         {"type": "track", "event": "Order Completed", "properties": {"total": 9.5}}),
        (client.identify(user_id=f"u-{tag}", traits={"email": f"{tag}@example.org"}, **at),
         {"type": "identify", "event": "identify", "traits": {"email": f"{tag}@example.org"}}),
        (client.page(anonymous_id=f"a-{tag}", name="Pricing", category="Docs",
                     properties={"path": "/pricing"}, **at),
         {"type": "page", "event": "Pricing", "category": "Docs",
          "properties": {"path": "/pricing"}}),
        (client.screen(user_id=f"u-{tag}", name="Settings", **at),
         {"type": "screen", "event": "Settings"}),
        (client.group(user_id=f"u-{tag}", group_id=f"g-{tag}", traits={"employees": 420}, **at),
         {"type": "group", "event": "group", "group_id": f"g-{tag}",
          "traits": {"employees": 420}}),
        (client.alias(previous_id=f"a-{tag}", user_id=f"u-{tag}", **at),
         {"type": "alias", "event": "alias", "previous_id": f"a-{tag}"}),
    ]  # fmt: skip
    expected = {}
    for (queued, msg), want in sent:
        assert queued, msg
        expected[msg["messageId"]] = want
    return expected


def _stored(admin: httpx.Client, system_id: str) -> list[dict[str, Any]]:
    return sql(
        admin,
        "SELECT message_id, type, event, group_id, previous_id, category, traits, properties, "
        "toString(timestamp) AS timestamp, toString(original_timestamp) AS original_timestamp "
        f"FROM tracking_events WHERE system_id = '{system_id}'",
    )


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_segment_sdk_lands_every_call_once(
    admin: httpx.Client,
    server: ServeProcess,
    proxy: _LossyProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    system = new_system(admin)
    wait_for(lambda: key_works(server, system["api_key"]), timeout_s=20, what="key usable")
    monkeypatch.setattr(sdk_request, "datetime", _ClientClock)
    errors: list[Any] = []
    options: dict[str, Any] = {"upload_interval": 0.1, "max_retries": 3,
                               "on_error": lambda e, batch: errors.append((e, batch))}  # fmt: skip
    direct = Client(system["api_key"], host=server.settings.api_url, **options)
    lossy = Client(system["api_key"], host=proxy.url, gzip=True, **options)
    try:
        expected = _calls(direct, "direct") | _calls(lossy, "lossy")
        # The app sends one message twice under its own id: stored once.
        for _ in range(2):
            direct.track(
                user_id="u-direct", event="Resent", message_id=f"resent-{system['system_id']}"
            )
        expected[f"resent-{system['system_id']}"] = {"type": "track", "event": "Resent"}
        direct.flush()
        lossy.flush()
        # Everything so far is ahead of this marker in the system's partition.
        _, marker = direct.track(user_id="u-direct", event="marker", timestamp=HISTORIC)
        direct.flush()
    finally:
        direct.shutdown()
        lossy.shutdown()
    assert errors == []
    # the first batch was stored, its answer lost, and the SDK sent it again
    attempts = [(s["status"], s["retry"]) for s in proxy.seen]
    assert attempts[:2] == [(200, None), (200, "1")] and {s for s, _ in attempts} == {200}
    assert {s["encoding"] for s in proxy.seen} == {"gzip"}

    def all_stored() -> list[dict[str, Any]] | None:
        # The sink stores a batch in chunks by month, oldest first (the marker's is older
        # than the rest): wait for every id, then the counts say "exactly once" because
        # every earlier batch (the retried one included) was stored before the marker's.
        rows = _stored(admin, system["system_id"])
        return rows if {*expected, marker["messageId"]} <= {r["message_id"] for r in rows} else None

    rows = wait_for(all_stored, timeout_s=60, what="every call in tracking_events")
    counts = Counter(r["message_id"] for r in rows)
    assert counts == Counter({**dict.fromkeys(expected, 1), marker["messageId"]: 1})
    for row in rows:
        if row["message_id"] == marker["messageId"]:
            continue
        want = expected[row["message_id"]]
        assert (row["type"], row["event"]) == (want["type"], want["event"]), row
        assert row["group_id"] == want.get("group_id") and row["previous_id"] == want.get(
            "previous_id"
        ), row
        assert row["category"] == want.get("category"), row
        assert json.loads(row["traits"]) == want.get("traits", {}), row
        assert json.loads(row["properties"]) == want.get("properties", {}), row
        if row["message_id"].startswith("resent-"):
            continue  # sent without a timestamp: the server's time
        # Segment spec: timestamp = receivedAt - (sentAt - originalTimestamp).
        assert _when(row["original_timestamp"]) == HISTORIC, row
        lag = _when(row["timestamp"]) - (HISTORIC - SKEW)
        assert timedelta(milliseconds=-1) <= lag < timedelta(seconds=30), row
