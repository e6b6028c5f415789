"""Web server logs as page-view tracking events, sent through the public ingestion API.

Two sources ship in ``deploy/data``: the NASA Kennedy Space Center log of 1 August 1995
(a TSV with epoch-second times) and an Apache combined log from May 2015. Each parsed line
becomes one SDK event (see :func:`parse_nasa`), validated by ``PAGE_VIEW_SCHEMA``;
``deploy.batch_sender.send_events`` posts them to ``POST /v1/batch``, and
``deploy.demo_partner.setup_partner`` makes (once) the partner, system and structure.

Message ids are ``<source>:<line number>``, so sending a file again is deduplicated by the
pipeline (per system, within its dedup window) instead of counted twice.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["EVENT_NAME", "LIBRARY_NAME", "PAGE_VIEW_SCHEMA", "parse_apache", "parse_nasa"]

EVENT_NAME = "page_view"
LIBRARY_NAME = "streamfold-weblog-loader"
MAX_TEXT = 2000  # path, referrer and user agent are cut here: a 32 KiB event stays far away
MAX_ID = 200  # the API's limit for anonymous_id

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
