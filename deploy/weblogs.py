"""Web server logs as page-view tracking events, sent through the public ingestion API.

Two sources ship in ``deploy/data``: the NASA Kennedy Space Center log of 1 August 1995
(a TSV with epoch-second times) and an Apache combined log from May 2015. Each parsed line
becomes one SDK event (see :func:`parse_nasa`); :func:`send_events` posts them in batches to
``POST /v1/batch`` with a partner system's API key, and :func:`setup_partner` makes (once)
the partner, the system and the ``page_view`` event structure that validates them.

Message ids are ``<source>:<line number>``, so sending a file again is deduplicated by the
pipeline (per system, within its dedup window) instead of counted twice.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = [
    "EVENT_NAME",
    "PAGE_VIEW_SCHEMA",
    "PARTNER_NAME",
    "SYSTEM_NAME",
    "WeblogsSetupError",
    "parse_apache",
    "parse_nasa",
    "send_events",
    "setup_partner",
    "wait_for_pipeline",
]

EVENT_NAME = "page_view"
PARTNER_NAME = "Demo Web Analytics"
PARTNER_EMAIL = "weblogs-demo@example.com"
SYSTEM_NAME = "weblogs"
LIBRARY_NAME = "streamfold-weblog-loader"
MAX_TEXT = 2000  # path, referrer and user agent are cut here: a 32 KiB event stays far away
MAX_ID = 200  # the API's limit for anonymous_id
# Below the API's 1 MiB body limit with room for the envelope; batches are cut by size too.
MAX_BODY_BYTES = 900_000

PAGE_VIEW_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "page_view properties",
    "type": "object",
    "properties": {
        "path": {"type": "string", "maxLength": MAX_TEXT},
        "method": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "bytes": {"type": "integer", "minimum": 0},
        "referrer": {"type": ["string", "null"]},
        "user_agent": {"type": ["string", "null"]},
    },
    "required": ["path", "status"],
}

# host ident authuser [time] "request" status bytes "referer" "user agent". Quoted fields may
# hold backslash-escaped quotes (Apache escapes them so).
_APACHE_LINE = re.compile(
    r'^(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referrer>(?:[^"\\]|\\.)*)" '
    r'"(?P<agent>(?:[^"\\]|\\.)*)"\s*$'
)
# 17/May/2015:10:05:03 +0000. Month names parsed by hand: %b depends on the locale.
_APACHE_TIME = re.compile(
    r"^(?P<d>\d{2})/(?P<mon>[A-Za-z]{3})/(?P<y>\d{4}):(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2}) "
    r"(?P<sign>[+-])(?P<oh>\d{2})(?P<om>\d{2})$"
)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip
_RETRY_STATUSES = frozenset({502, 503, 504})


class WeblogsSetupError(RuntimeError):
    """The partner, system or event structure could not be made or confirmed."""


# ----------------------------------------------------------------- parsing


def _text(value: str | None) -> str | None:
    """'' and '-' (the log formats' "none") as None; otherwise cut to MAX_TEXT chars."""
    if value is None or value in ("", "-"):
        return None
    return value[:MAX_TEXT]


def _path(url: str) -> str:
    # Query strings and fragments carry per-visit noise (and sometimes personal data).
    return url.split("?", 1)[0].split("#", 1)[0][:MAX_TEXT] or "/"


def _bytes(value: str) -> int | None:
    """'' and '-' are 0 (no body); None for anything else that is not a digit string."""
    if value in ("", "-"):
        return 0
    return int(value) if value.isdigit() else None


def _event(
    source: str,
    line: int,
    host: str,
    when: datetime,
    method: str,
    url: str,
    status: int,
    size: int,
    referrer: str | None,
    agent: str | None,
) -> dict[str, Any]:
    return {
        "event": EVENT_NAME,
        "anonymous_id": host,
        "timestamp": when.astimezone(UTC).isoformat(),
        "message_id": f"{source}:{line}",
        "properties": {
            "path": _path(url),
            "method": method,
            "status": status,
            "bytes": size,
            "referrer": _text(referrer),
            "user_agent": _text(agent),
        },
        "context": {"library": {"name": LIBRARY_NAME}, "source": source},
    }


def _usable(host: str, status: int | None, size: int | None, method: str, url: str) -> str | None:
    """Why a parsed line cannot be an event, or None if it can."""
    if not host or len(host) > MAX_ID:
        return "bad host"
    if status is None or not 100 <= status <= 599:
        return "bad status"
    if size is None:
        return "bad bytes"
    if not method or not url:
        return "bad request"
    return None


def parse_nasa(path: Path | str, skipped: Counter[str] | None = None) -> Iterator[dict[str, Any]]:
    """Page-view SDK events from the NASA TSV (header ``host logname time method url
    response bytes referer useragent``; ``time`` in epoch seconds, UTC).

    message_id is ``nasa:<line number>`` (1-based, the header is line 1). A line that
    cannot be an event (wrong column count, non-numeric time/status/bytes, status outside
    100-599, empty host or url) is skipped and counted in ``skipped`` under ``nasa: <why>``.
    Raises ``OSError`` if the file cannot be read, ``ValueError`` if the header is not the
    expected one.
    """
    skipped = skipped if skipped is not None else Counter()
    with Path(path).open(newline="", encoding="utf-8", errors="replace") as f:
        # QUOTE_NONE: log fields may contain '"' and are never quoted in this file.
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        expected = ["host", "logname", "time", "method", "url", "response", "bytes", "referer",
                    "useragent"]  # fmt: skip
        if header != expected:
            raise ValueError(f"{path}: header is {header}, expected {expected}")
        for row in reader:
            line = reader.line_num
            if len(row) != len(expected):
                skipped["nasa: wrong column count"] += 1
                continue
            host, _, epoch, method, url, response, size_text, referrer, agent = row
            status = int(response) if response.isdigit() else None
            size = _bytes(size_text)
            why = _usable(host, status, size, method, url)
            if why is None and not epoch.isdigit():
                why = "bad time"
            if why is not None:
                skipped[f"nasa: {why}"] += 1
                continue
            assert status is not None and size is not None  # _usable checked them
            # timedelta from the epoch: exact and independent of the host's time zone.
            when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(epoch))
            yield _event("nasa", line, host, when, method, url, status, size, referrer, agent)


def _apache_time(text: str) -> datetime | None:
    m = _APACHE_TIME.match(text)
    if m is None or m["mon"].lower() not in _MONTHS:
        return None
    offset = timedelta(hours=int(m["oh"]), minutes=int(m["om"]))
    try:
        local = datetime(int(m["y"]), _MONTHS[m["mon"].lower()], int(m["d"]), int(m["h"]),
                         int(m["mi"]), int(m["s"]))  # fmt: skip
    except ValueError:
        return None
    utc = local - offset if m["sign"] == "+" else local + offset
    return utc.replace(tzinfo=UTC)


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\\\", "\\")


def parse_apache(path: Path | str, skipped: Counter[str] | None = None) -> Iterator[dict[str, Any]]:
    """Page-view SDK events from an Apache combined log (``host - - [17/May/2015:10:05:03
    +0000] "GET /p HTTP/1.1" 200 203023 "referer" "user agent"``).

    message_id is ``apache:<line number>`` (1-based). Lines that do not match the format
    (e.g. truncated), with an unreadable time or a request that is not ``METHOD URL
    [PROTOCOL]`` are skipped and counted in ``skipped`` under ``apache: <why>``; blank
    lines are ignored. Raises ``OSError`` if the file cannot be read.
    """
    skipped = skipped if skipped is not None else Counter()
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            m = _APACHE_LINE.match(text)
            if m is None:
                skipped["apache: not combined log format"] += 1
                continue
            when = _apache_time(m["time"])
            if when is None:
                skipped["apache: bad time"] += 1
                continue
            request = _unescape(m["request"]).split()
            # HTTP/0.9 requests have no protocol part; anything else is junk (scanners).
            if len(request) not in (2, 3):
                skipped["apache: bad request"] += 1
                continue
            method, url = request[0], request[1]
            status, size = int(m["status"]), _bytes(m["bytes"])
            why = _usable(m["host"], status, size, method, url)
            if why is not None:
                skipped[f"apache: {why}"] += 1
                continue
            assert size is not None  # _usable checked it
            yield _event("apache", line, m["host"], when, method, url, status, size,
                         _unescape(m["referrer"]), _unescape(m["agent"]))  # fmt: skip


# ----------------------------------------------------------------- sending


def _batches(encoded: list[str], batch_size: int, max_body_bytes: int) -> list[list[str]]:
    """Cut JSON-encoded events into batches of at most ``batch_size`` events whose request
    body (``{"batch":[...]}``) stays within ``max_body_bytes``."""
    batches: list[list[str]] = []
    current: list[str] = []
    size = len('{"batch":[]}')
    for item in encoded:
        item_size = len(item.encode()) + 1  # the comma
        if current and (len(current) >= batch_size or size + item_size > max_body_bytes):
            batches.append(current)
            current, size = [], len('{"batch":[]}')
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches


def _backoff(attempt: int) -> float:
    """Seconds before retry ``attempt`` (1-based): 0.5, 1, 2, 4, 8, 10, ... plus jitter."""
    base = min(0.5 * 2 ** (attempt - 1), 10.0)
    return base + random.uniform(0, base / 4)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.1), 60.0)
    except ValueError:
        return None


def _problem(response: httpx.Response) -> str:
    try:
        return str(response.json().get("type", ""))
    except ValueError:
        return response.text[:100]


async def send_events(
    base_url: str,
    api_key: str,
    events: Iterable[dict[str, Any]],
    *,
    batch_size: int = 500,
    concurrency: int = 4,
    progress_label: str = "sending events",
    max_tries: int = 10,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Counter[str]:
    """POST ``events`` to ``{base_url}/v1/batch`` with ``api_key``, ``concurrency`` requests
    at a time, showing a progress bar (events sent of total).

    A 429 is retried after its Retry-After (seconds, capped at 60); 502/503/504 and
    connection errors after an exponential backoff; at most ``max_tries`` tries per batch.
    Returns outcome -> events: ``accepted``, the API's per-event reason (``malformed``,
    ``too_large``, ``missing_id``), ``http <status> <problem type>`` for a batch refused
    outright, or ``gave up: <last error>`` once the tries are used up. Never raises for
    HTTP problems (they are counted); an event too large for a body on its own is sent
    alone and counted from the answer.
    """
    encoded = [json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in events]
    batches = _batches(encoded, batch_size, max_body_bytes)
    outcomes: Counter[str] = Counter()
    pending = iter(batches)
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("events"), TimeElapsedColumn())  # fmt: skip
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task(progress_label, total=len(encoded))

            async def post(batch: list[str]) -> None:
                body = ('{"batch":[' + ",".join(batch) + "]}").encode()
                last = ""
                for attempt in range(1, max_tries + 1):
                    delay: float | None
                    try:
                        response = await client.post("/v1/batch", content=body)
                    except httpx.TransportError as exc:
                        last, delay = f"{type(exc).__name__}", _backoff(attempt)
                    else:
                        if response.status_code == 202:
                            for result in response.json()["results"]:
                                outcome = result["status"]
                                outcomes["accepted" if outcome == "accepted" else
                                         result.get("reason", outcome)] += 1  # fmt: skip
                            return
                        last = f"http {response.status_code} {_problem(response)}"
                        if response.status_code == 429:
                            delay = _retry_after(response) or _backoff(attempt)
                        elif response.status_code in _RETRY_STATUSES:
                            delay = _backoff(attempt)
                        else:
                            outcomes[last] += len(batch)  # not retryable: the batch is refused
                            return
                    if attempt < max_tries:
                        await asyncio.sleep(delay)
                outcomes[f"gave up: {last}"] += len(batch)

            async def worker() -> None:
                # One shared iterator: each worker takes the next batch when it is free.
                for batch in pending:
                    await post(batch)
                    progress.advance(task, len(batch))

            await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return outcomes


# ----------------------------------------------------------------- partner setup


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201, 202):
        raise WeblogsSetupError(f"{what}: {response.status_code} {response.text[:500]}")
    return response.json()


def _system_named(partner: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in partner.get("systems", []) if s.get("name") == name), None)


def _wait_until(
    client: httpx.Client, partner_id: str, system_id: str, api_key: str, timeout_s: float
) -> None:
    """Until the read model shows the system with the current page_view structure and the
    key authenticates (an empty batch answers 202): before that, events would be refused
    (401) or validated against no structure."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        response = client.get(f"/api/admin/partners/{partner_id}")
        if response.status_code == 200:
            system = next(
                (s for s in response.json()["systems"] if s["system_id"] == system_id), None
            )
            structure = (system or {}).get("structures", {}).get(EVENT_NAME)
            if structure and structure["json_schema"] == PAGE_VIEW_SCHEMA:
                probe = client.post(
                    "/v1/batch",
                    json={"batch": []},
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                if probe.status_code == 202:
                    return
                last = f"probe {probe.status_code} {probe.text[:200]}"
            else:
                last = "structure not visible yet"
        else:
            last = f"partner {response.status_code}"
        time.sleep(0.5)
    raise WeblogsSetupError(f"system {system_id} not usable after {timeout_s:.0f} s: {last}")


def setup_partner(
    base_url: str, admin_token: str, state_path: Path, *, timeout_s: float = 60
) -> tuple[str, str, str]:
    """(partner_id, system_id, api_key) of the demo partner's ``weblogs`` system, with the
    ``page_view`` structure defined (required: non-conforming events are rejected).

    Reuses ``state_path`` (JSON ``{partner_id, system_id, api_key}``, mode 600) when the
    partner still exists there (GET answers 200) and has that system; otherwise creates the
    partner (Idempotency-Key fixed, so a lost state file finds the same partner again), adds
    the system or, if one of that name exists, rotates its key (a key is shown only once),
    and writes the file. Waits until the read model and the key are usable.

    Raises ``WeblogsSetupError`` for an unexpected answer or a timeout; ``httpx.HTTPError``
    if the API cannot be reached.
    """
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        saved = _load_state(state_path)
        if saved is not None:
            response = client.get(f"/api/admin/partners/{saved['partner_id']}")
            if response.status_code == 200 and any(
                s["system_id"] == saved["system_id"] and s.get("status") == "active"
                for s in response.json()["systems"]
            ):
                _define_structure(client, saved["partner_id"], saved["system_id"])
                _wait_until(client, saved["partner_id"], saved["system_id"], saved["api_key"],
                            timeout_s)  # fmt: skip
                return saved["partner_id"], saved["system_id"], saved["api_key"]
        partner_id = _check(
            client.post(
                "/api/admin/partners",
                json={"name": PARTNER_NAME, "email": PARTNER_EMAIL},
                headers={"Idempotency-Key": "streamfold-weblogs:partner"},
            ),
            "create partner",
        )["id"]
        system_id, api_key = _system_key(client, partner_id, timeout_s)
        _save_state(state_path, partner_id, system_id, api_key)
        _define_structure(client, partner_id, system_id)
        _wait_until(client, partner_id, system_id, api_key, timeout_s)
        return partner_id, system_id, api_key


def _partner_state(client: httpx.Client, partner_id: str, timeout_s: float) -> dict[str, Any]:
    # The read model trails the command result by a moment (projection to Redis).
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/api/admin/partners/{partner_id}")
        if response.status_code == 200:
            return response.json()
        if time.monotonic() > deadline:
            raise WeblogsSetupError(f"partner {partner_id}: {response.status_code}")
        time.sleep(0.5)


def _system_key(client: httpx.Client, partner_id: str, timeout_s: float) -> tuple[str, str]:
    existing = _system_named(_partner_state(client, partner_id, timeout_s), SYSTEM_NAME)
    if existing is None:
        response = client.post(f"/api/admin/partners/{partner_id}/systems",
                               json={"name": SYSTEM_NAME})  # fmt: skip
        body = _check(response, "add system")
        if "api_key" in body:
            return body["system_id"], body["api_key"]
        # 202 pending: the system will exist but its key was not shown; rotate below.
        deadline = time.monotonic() + timeout_s
        while existing is None and time.monotonic() < deadline:
            time.sleep(0.5)
            existing = _system_named(_partner_state(client, partner_id, timeout_s), SYSTEM_NAME)
        if existing is None:
            raise WeblogsSetupError(f"system {SYSTEM_NAME!r} did not appear")
    system_id = existing["system_id"]
    if existing.get("status") != "active":
        _check(client.post(f"/api/admin/partners/{partner_id}/systems/{system_id}/reactivate"),
               "reactivate system")  # fmt: skip
    body = _check(
        client.post(f"/api/admin/partners/{partner_id}/systems/{system_id}/rotate-key"),
        "rotate key",
    )
    if "api_key" not in body:
        raise WeblogsSetupError(f"rotate key of {system_id}: no key in the answer {body}")
    return system_id, body["api_key"]


def _define_structure(client: httpx.Client, partner_id: str, system_id: str) -> None:
    # Idempotent: the same schema and flag again records nothing new.
    _check(
        client.put(
            f"/api/admin/partners/{partner_id}/systems/{system_id}/event-structures/{EVENT_NAME}",
            json={"json_schema": PAGE_VIEW_SCHEMA, "required": True},
        ),
        "define page_view structure",
    )


def _load_state(path: Path) -> dict[str, str] | None:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not all(
        isinstance(saved.get(k), str) for k in ("partner_id", "system_id", "api_key")
    ):
        return None
    return saved


def _save_state(path: Path, partner_id: str, system_id: str, api_key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 600 before the key is written: it is a live credential.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    saved = {"partner_id": partner_id, "system_id": system_id, "api_key": api_key}
    path.write_text(json.dumps(saved, indent=2) + "\n")


# ----------------------------------------------------------------- waiting


def wait_for_pipeline(
    base_url: str,
    admin_token: str,
    partner_id: str,
    system_id: str,
    expected: int,
    *,
    timeout_s: float = 120,
) -> tuple[int, int, bool]:
    """Poll until the system's stored events plus its validation rejections reach
    ``expected`` (ingestion -> validation -> ClickHouse is asynchronous).

    Returns (events in ``tracking_events``, rejections, whether ``expected`` was reached
    within ``timeout_s`` seconds). Raises ``httpx.HTTPError`` if the API cannot be reached.
    """
    headers = {"Authorization": f"Bearer {admin_token}"}
    deadline = time.monotonic() + timeout_s
    events = rejected = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        while True:
            stats = client.get("/v1/analytics/stats", params={"system": system_id})
            if stats.status_code == 200:
                events = int(stats.json()["totals"]["events"])
            rejections = client.get(
                f"/api/admin/partners/{partner_id}/systems/{system_id}/rejected-events",
                params={"limit": 1},
            )
            if rejections.status_code == 200:
                rejected = int(rejections.json()["total"])
            # >=: a rerun after the dedup window adds rows again; never wait forever on it.
            if events + rejected >= expected:
                return events, rejected, True
            if time.monotonic() > deadline:
                return events, rejected, False
            time.sleep(1.0)
