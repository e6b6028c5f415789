"""Web log parsing (deploy.weblogs): literal lines of both formats, and every line of the
real files in deploy/data against the page_view schema and the API's own SDK event parser."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from deploy.batch_sender import _batches
from deploy.weblogs import PAGE_VIEW_SCHEMA, parse_apache, parse_nasa
from pipeline.domain.tracking import TrackedEvent, parse_sdk_event

DATA = Path(__file__).resolve().parents[3] / "deploy" / "data"
NASA = DATA / "nasa_19950801.tsv"
APACHE = DATA / "apache_logs.log"

NASA_HEADER = "host\tlogname\ttime\tmethod\turl\tresponse\tbytes\treferer\tuseragent\n"
NASA_LINES = (
    "pppa006.compuserve.com\t-\t807256800\tGET\t/images/launch-logo.gif\t200\t1713\t\t\n"
    "h1.example.org\t-\t807256804\tGET\t/cgi-bin/imagemap?x=1\t304\t-\thttp://r/\tMosaic\n"
    "broken line without tabs\n"
    "h2.example.org\t-\t807256805\tGET\t/ok.html\t999\t12\t\t\n"
    "h3.example.org\t-\t807256806\tHEAD\t/\t200\t\t\t\n"
)
APACHE_LINES = (
    '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/a.png HTTP/1.1" 200 '
    '203023 "http://semicomplete.com/presentations/" "Mozilla/5.0 (Macintosh)"\n'
    '46.118.127.106 - - [20/May/2015:12:05:17 +0000] "GET /configlib.py HTTP/1.1" 200 235 '
    '"-" "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html\n'
    '10.0.0.1 - - [17/May/2015:12:00:00 +0200] "GET /search?q=x HTTP/1.1" 304 - "-" "-"\n'
    '10.0.0.2 - - [17/May/2015:12:00:01 +0000] "\\x16\\x03\\x01" 400 226 "-" "-"\n'
    "\n"
    '10.0.0.3 - - [17/May/2015:12:00:02 +0000] "GET /say-\\"hi\\" HTTP/1.0" 200 5 "-" '
    '"agent \\"quoted\\""\n'
)


@pytest.fixture
def nasa_file(tmp_path: Path) -> Path:
    path = tmp_path / "nasa.tsv"
    path.write_text(NASA_HEADER + NASA_LINES)
    return path


@pytest.fixture
def apache_file(tmp_path: Path) -> Path:
    path = tmp_path / "apache.log"
    path.write_text(APACHE_LINES)
    return path


def test_nasa_lines_become_page_views(nasa_file: Path) -> None:
    skipped: Counter[str] = Counter()
    events = list(parse_nasa(nasa_file, skipped))
    assert [e["message_id"] for e in events] == ["nasa:2", "nasa:3", "nasa:6"]
    first = events[0]
    assert first == {
        "event": "page_view",
        "anonymous_id": "pppa006.compuserve.com",
        "timestamp": "1995-08-01T06:00:00+00:00",  # 807256800 s after the epoch
        "message_id": "nasa:2",
        "properties": {
            "path": "/images/launch-logo.gif",
            "method": "GET",
            "status": 200,
            "bytes": 1713,
            "referrer": None,
            "user_agent": None,
        },
        "context": {"library": {"name": "streamfold-weblog-loader"}, "source": "nasa"},
    }
    # Query string dropped; '-' and empty bytes are 0; referer/agent kept when given.
    assert events[1]["properties"] == {
        "path": "/cgi-bin/imagemap", "method": "GET", "status": 304, "bytes": 0,
        "referrer": "http://r/", "user_agent": "Mosaic",
    }  # fmt: skip
    assert events[2]["properties"]["bytes"] == 0
    assert events[2]["properties"]["method"] == "HEAD"
    assert skipped == Counter({"nasa: wrong column count": 1, "nasa: bad status": 1})


def test_nasa_refuses_an_unexpected_header(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="header"):
        list(parse_nasa(path))


def test_apache_lines_become_page_views(apache_file: Path) -> None:
    skipped: Counter[str] = Counter()
    events = list(parse_apache(apache_file, skipped))
    assert [e["message_id"] for e in events] == ["apache:1", "apache:3", "apache:6"]
    first = events[0]
    assert first["anonymous_id"] == "83.149.9.216"
    assert first["timestamp"] == "2015-05-17T10:05:03+00:00"
    assert first["properties"] == {
        "path": "/presentations/a.png", "method": "GET", "status": 200, "bytes": 203023,
        "referrer": "http://semicomplete.com/presentations/",
        "user_agent": "Mozilla/5.0 (Macintosh)",
    }  # fmt: skip
    assert first["context"] == {"library": {"name": "streamfold-weblog-loader"}, "source": "apache"}
    # +0200 local time is two hours earlier in UTC; '-' bytes is 0, '-' referer/agent None.
    second = events[1]
    assert second["timestamp"] == "2015-05-17T10:00:00+00:00"
    assert second["properties"] == {
        "path": "/search", "method": "GET", "status": 304, "bytes": 0,
        "referrer": None, "user_agent": None,
    }  # fmt: skip
    # Escaped quotes inside quoted fields are unescaped, not a parse failure.
    assert events[2]["properties"]["path"] == '/say-"hi"'
    assert events[2]["properties"]["user_agent"] == 'agent "quoted"'
    assert skipped == Counter({"apache: not combined log format": 1, "apache: bad request": 1})


def test_message_ids_are_deterministic(nasa_file: Path, apache_file: Path) -> None:
    assert list(parse_nasa(nasa_file)) == list(parse_nasa(nasa_file))
    assert list(parse_apache(apache_file)) == list(parse_apache(apache_file))


def test_batches_respect_count_and_size() -> None:
    items = [json.dumps({"i": i, "pad": "x" * 100}) for i in range(25)]
    assert [len(b) for b in _batches(items, 10, 10_000)] == [10, 10, 5]
    # ~115 bytes per item: a 600-byte body holds 5 of them with the envelope.
    batches = _batches(items, 500, 600)
    assert sum(len(b) for b in batches) == 25
    for batch in batches:
        assert len(('{"batch":[' + ",".join(batch) + "]}").encode()) <= 600


def test_every_real_event_is_a_valid_page_view() -> None:
    """All ~41k lines of both shipped logs: schema-valid and accepted by the ingestion parser
    (what /v1/batch runs per event), each body well under 1 MiB per 500 events."""
    skipped: Counter[str] = Counter()
    nasa = list(parse_nasa(NASA, skipped))
    apache = list(parse_apache(APACHE, skipped))
    assert len(nasa) == 30_969
    assert len(apache) + sum(v for k, v in skipped.items() if k.startswith("apache")) == 10_000
    assert len(apache) >= 9_990
    validator = jsonschema.Draft202012Validator(PAGE_VIEW_SCHEMA)
    validator.check_schema(PAGE_VIEW_SCHEMA)
    now = datetime.now(UTC)
    ids: set[str] = set()
    biggest = 0
    # jsonschema is slow per call; the ~8.6k distinct property objects stand for all 41k.
    distinct = {json.dumps(e["properties"], sort_keys=True) for e in nasa + apache}
    for properties in distinct:
        validator.validate(json.loads(properties))
    for event in nasa + apache:
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        biggest = max(biggest, size)
        parsed = parse_sdk_event(event, system_id="s", partner_id="p", received_at=now,
                                 raw_size=size)  # fmt: skip
        assert isinstance(parsed, TrackedEvent), (event["message_id"], parsed)
        assert parsed.message_id == event["message_id"]
        ids.add(parsed.message_id)
    assert len(ids) == len(nasa) + len(apache)
    assert 500 * biggest < 1_048_576
