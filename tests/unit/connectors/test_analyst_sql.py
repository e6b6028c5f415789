"""The analyst SQL policy (connectors/analyst_sql.py) on ClickHouse's own parses.

Each statement of CASES was parsed once by the engine, exactly as the connector does it
(``PARSE_SQL`` with ``ANALYST_SETTINGS``), into ``analyst_sql_asts.json`` beside this file,
together with the engine's functions those parses name; the tests here need no engine.
``tests/integration/test_analyst_sql.py`` checks that the file still matches the engine;
after a chdb upgrade rewrite it with ``.venv/bin/python -m tests.unit.connectors.test_analyst_sql``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import deps, problems
from api.routes import sql as sql_route
from api.security import Principal
from connectors import analyst_sql
from connectors.analyst_sql import FunctionCatalog, Select
from connectors.clickhouse import _json_sync
from connectors.exceptions import AnalystQueryError, ConnectorError, ReadOnlyQueryError

FIXTURE = Path(__file__).with_name("analyst_sql_asts.json")
OK = "ok"

CASES: list[tuple[str, str]] = [
    # -- what analysts run (README, deploy/cli.py load-weblogs, tests/support.sql users)
    ("SELECT role, count() FROM users FINAL GROUP BY role", OK),
    ("SELECT event, count() FROM tracking_events GROUP BY event", OK),
    ("SELECT JSONExtractString(properties, 'path') AS path, count() AS views "
     "FROM tracking_events WHERE system_id = 'x' AND event = 'page_view' "
     "GROUP BY path ORDER BY views DESC LIMIT 10", OK),
    ("WITH daily AS (SELECT toDate(timestamp) AS day, count() AS n FROM tracking_events "
     "GROUP BY day) SELECT max(n) FROM daily", OK),
    ("SELECT event FROM tracking_events UNION ALL SELECT reasons[1] FROM tracking_rejections",
     OK),
    ("SELECT number FROM numbers(10)", OK),
    ("SELECT * FROM generate_series(1, 5)", OK),
    ("SELECT count() AS n, uniqExact(event_id) AS ids FROM event_log FINAL "
     "WHERE aggregate_type = 'user' AND aggregate_id IN ('a', 'b')", OK),
    ("SELECT count(*) FROM event_log", OK),
    ("SELECT sum(events) AS n, uniqMerge(users) FROM tracking_minute WHERE system_id = 's'",
     OK),
    ("SELECT user_id, toString(last_login_at) AS last_login FROM users FINAL "
     "WHERE user_id IN ('a', 'b')", OK),
    ("SELECT COUNT(*), countIf(role = 'admin'), date_diff('day', created_at, now()) FROM users",
     OK),
    ("SELECT u.role, e.event_type FROM users AS u "
     "INNER JOIN event_log AS e ON e.aggregate_id = u.user_id", OK),
    ("SELECT arrayMap(x -> x * 2, [1, 2, 3]), CASE WHEN 1 THEN 'a' ELSE 'b' END, "
     "CASE role WHEN 'admin' THEN 1 END, CAST(1 AS String), INTERVAL 1 DAY FROM users", OK),
    ("SELECT role, row_number() OVER (PARTITION BY role ORDER BY created_at) FROM users", OK),
    ("SELECT user_id FROM users WHERE user_id IN (SELECT aggregate_id FROM event_log)", OK),
    ("WITH ids AS (SELECT user_id FROM users) SELECT count() FROM users WHERE user_id IN ids",
     OK),
    ("SELECT * FROM users", OK),
    ("SELECT 1;", OK),
    ("SELECT formatReadableSize(sum(length(properties))) FROM tracking_events", OK),
    # -- several statements: one answer, whatever is in the middle
    ("SELECT 1; INSERT INTO users (user_id) VALUES ('x'); SELECT 2", "multiple statements"),
    ("SELECT 1; ALTER TABLE users DELETE WHERE 1; SELECT 2", "multiple statements"),
    ("SELECT 1; CREATE TABLE t (x UInt8) ENGINE = Memory; SELECT 2", "multiple statements"),
    ("SELECT 1; SELECT 'x' INTO OUTFILE '/tmp/f' FORMAT TSV; SELECT 1", "multiple statements"),
    ("SELECT 1; DROP TABLE users", "multiple statements"),
    # -- not a SELECT
    ("INSERT INTO users (user_id) VALUES ('x')", "not a SELECT"),
    ("INSERT INTO users SELECT * FROM users", "not a SELECT"),
    ("ALTER TABLE users DELETE WHERE 1", "not a SELECT"),
    ("CREATE TABLE t (x UInt8) ENGINE = Memory", "not a SELECT"),
    ("DROP TABLE users", "not a SELECT"),
    ("SET readonly = 0", "not a SELECT"),
    ("SHOW TABLES", "not a SELECT"),
    ("EXPLAIN SELECT 1", "not a SELECT"),
    # -- clauses that write or change settings
    ("SELECT 'x' INTO OUTFILE '/tmp/f'", "INTO OUTFILE"),
    ("SELECT 'x' INTO OUTFILE '/tmp/f' AND STDOUT", "INTO OUTFILE"),
    ("SELECT 1 FORMAT JSON", "FORMAT clause"),
    ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clause"),
    ("SELECT * FROM users WHERE user_id IN "
     "(SELECT user_id FROM users SETTINGS max_execution_time = 0)", "SETTINGS clause"),
    # -- table functions: an allowlist
    ("SELECT * FROM file('/work/main/.local/admin-password', 'LineAsString')",
     "table function not allowed: file"),
    ("SELECT * FROM file('/proc/self/environ', 'LineAsString')",
     "table function not allowed: file"),
    ("SELECT * FROM url('http://127.0.0.1:8000/healthz', 'LineAsString')",
     "table function not allowed: url"),
    ("SELECT * FROM remote('127.0.0.1', default.accounts)", "table function not allowed: remote"),
    ("SELECT * FROM executable('id', 'TSV', 'x String')",
     "table function not allowed: executable"),
    ("SELECT * FROM merge('default', '.*')", "table function not allowed: merge"),
    ("SELECT * FROM (EXPLAIN SELECT 1)", "table function not allowed: viewExplain"),
    ("SELECT * FROM users AS u, numbers(1) AS n, s3('http://x/y', 'CSV') AS s",
     "table function not allowed: s3"),
    # -- functions that reach outside the statement
    ("SELECT file('/etc/passwd')", "function not allowed: file"),
    ("SELECT COLUMNS('p') APPLY file FROM (SELECT '/etc/passwd' AS p)",
     "function not allowed: file"),
    ("SELECT * APPLY (x -> file(x)) FROM (SELECT '/etc/passwd' AS p)",
     "function not allowed: file"),
    ("SELECT dictGet('d', 'a', 1)", "function not allowed: dictGet"),
    ("SELECT getServerSetting('path')", "function not allowed: getServerSetting"),
    ("SELECT sleep(3)", "function not allowed: sleep"),
    ("SELECT throwIf(1, 'x')", "function not allowed: throwIf"),
    ("SELECT aiGenerate('say hi')", "function not allowed: aiGenerate"),
    # -- tables: an allowlist; accounts (password hashes) is not on it
    ("SELECT password_hash FROM accounts", "table not allowed: accounts"),
    ("SELECT u.user_id FROM users AS u JOIN accounts AS a USING (user_id)",
     "table not allowed: accounts"),
    ("SELECT ('u', 'h') IN accounts", "table not allowed: accounts"),
    ("SELECT name FROM system.tables", "table not allowed: system.tables"),
    ("SELECT * FROM system.numbers LIMIT 1", "table not allowed: system.numbers"),
    ("SELECT * FROM default.users", "table not allowed: default.users"),
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "table not allowed: INFORMATION_SCHEMA.TABLES"),
    ("SELECT * FROM tracking_minute_mv", "table not allowed: tracking_minute_mv"),
    ("WITH a AS (SELECT * FROM accounts) SELECT * FROM a", "table not allowed: accounts"),
    ("WITH accounts AS (SELECT 1 AS x) SELECT * FROM accounts",
     "WITH name shadows a table: accounts"),
    ("SELECT * FROM x UNION ALL (WITH x AS (SELECT 1) SELECT * FROM x)", "table not allowed: x"),
    ("WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
     "SELECT * FROM r", "table not allowed: r"),
    # -- event_log.data holds password hashes (UserCreated, AccountUpdated)
    ("SELECT data FROM event_log WHERE event_type = 'UserCreated'",
     "column not allowed: event_log.data"),
    ("SELECT JSONExtractString(e.data, 'password_hash') FROM event_log AS e",
     "column not allowed: event_log.data"),
    ("SELECT 1 IN event_log", "column not allowed: event_log.data"),
    ("SELECT * FROM event_log", "column not allowed: event_log.data (name the columns)"),
    ("SELECT e.* FROM event_log AS e", "column not allowed: event_log.data (name the columns)"),
    ("SELECT COLUMNS('d.*') FROM event_log",
     "column not allowed: event_log.data (name the columns)"),
    ("SELECT tuple(*) FROM event_log", "column not allowed: event_log.data (name the columns)"),
    ("SELECT x FROM (SELECT * FROM event_log) AS x",
     "column not allowed: event_log.data (name the columns)"),
    # -- ClickHouse's own refusals: short, never its text
    ("SELEC 1", "error: syntax error at position 7"),
    ("   ", "error: syntax error"),
]  # fmt: skip

CATALOG_PROBES = ("sumIf", "uniqMergeState", "date_diff", "DATE_DIFF", "SUBSTRING", "quantilesIf")


# -- the fixture ---------------------------------------------------------------------------


def capture() -> dict[str, Any]:
    """Parse every CASES statement on chdb as the connector does (in a fresh process:
    chdb allows one engine path per process)."""
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import DatabaseError

    settings = analyst_sql.ANALYST_SETTINGS
    client = clickhouse_connect.get_client(dsn="chdb://memory", settings=settings)
    parsed: dict[str, Any] = {}
    names: set[str] = set(CATALOG_PROBES)
    for sql, _ in CASES:
        try:
            body = _json_sync(client, Select(analyst_sql.PARSE_SQL, {"sql": sql}))
        except DatabaseError as exc:
            parsed[sql] = {"error": {"code": exc.code, "name": exc.name, "message": str(exc)}}
            continue
        canonical, ast = body["data"][0]
        parsed[sql] = {"canonical": canonical, "ast": json.loads(ast)}
        names |= _function_names(parsed[sql]["ast"])

    def rows(sql: str) -> list[list[Any]]:
        return _json_sync(client, Select(sql))["data"]

    combinators = sorted(row[0] for row in rows(analyst_sql.COMBINATORS_SQL))
    functions = rows(analyst_sql.CATALOG_SQL)
    version = rows("SELECT version()")[0][0]
    return {
        "engine": f"ClickHouse {version}",
        "parsed": parsed,
        "functions": _catalog_subset(functions, combinators, names),
        "combinators": combinators,
    }


def _function_names(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") == "Function":
            found.add(node["name"])
        if node.get("type") == "ColumnsApplyTransformer" and node.get("func_name"):
            found.add(node["func_name"])
        for value in node.values():
            found |= _function_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _function_names(value)
    return found


def _catalog_subset(
    rows: list[list[Any]], combinators: list[str], names: set[str]
) -> list[list[Any]]:
    """The rows a lookup of ``names`` can reach: spellings, aliases, combinator bases."""
    exact = {r[0]: r for r in rows}
    folded = {r[0].lower(): r for r in rows if r[2]}
    keep: dict[str, list[Any]] = {}

    def add(name: str, depth: int) -> None:
        for row in (exact.get(name), folded.get(name.lower())):
            if row is not None and row[0] not in keep:
                keep[row[0]] = row
                if row[1]:
                    add(row[1], depth)
        for suffix in combinators if depth < 4 else ():
            if name.endswith(suffix) and len(name) > len(suffix):
                add(name[: -len(suffix)], depth + 1)

    for name in sorted(names):
        add(name, 0)
    return sorted(keep.values())


@pytest.fixture(scope="module")
def fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def catalog(fixture: dict[str, Any]) -> FunctionCatalog:
    return FunctionCatalog(fixture["functions"], fixture["combinators"])


def decide(fixture: dict[str, Any], catalog: FunctionCatalog, sql: str) -> str:
    """What the connector does with ``sql``: OK, a refusal's reason, or "error: …"."""
    parsed = fixture["parsed"][sql]
    try:
        if "error" in parsed:
            error = parsed["error"]
            raise analyst_sql.parse_failure(error["code"], error["name"], error["message"])
        select = analyst_sql.check(parsed["canonical"], parsed["ast"], catalog)
    except ReadOnlyQueryError as exc:
        return exc.reason
    except AnalystQueryError as exc:
        return f"error: {exc}"
    assert select == Select(parsed["canonical"])  # what runs is what was checked
    return OK


def test_the_fixture_covers_every_case(fixture: dict[str, Any]) -> None:
    assert set(fixture["parsed"]) == {sql for sql, _ in CASES}


# -- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sql", "expected"), CASES, ids=[sql[:60] for sql, _ in CASES])
def test_policy(fixture: dict[str, Any], catalog: FunctionCatalog, sql: str, expected: str) -> None:
    outcome = decide(fixture, catalog, sql)
    if expected.startswith("error: ") and not expected[7:].endswith(tuple("0123456789")):
        assert outcome.startswith(expected), outcome
    else:
        assert outcome == expected


def test_a_checked_statement_is_clickhouses_canonical_text(fixture: dict[str, Any]) -> None:
    # comments and the trailing semicolon are gone: only the statement ClickHouse parsed runs
    assert fixture["parsed"]["SELECT 1;"]["canonical"] == "SELECT 1"


def test_unknown_syntax_is_refused_by_kind(catalog: FunctionCatalog) -> None:
    ast = {
        "type": "SelectWithUnionQuery",
        "list_of_selects": {"type": "ExpressionList", "children": [{"type": "SomethingNew"}]},
    }
    with pytest.raises(ReadOnlyQueryError, match="construct not allowed: SomethingNew"):
        analyst_sql.check("SELECT …", ast, catalog)


def test_deeply_nested_statements_are_refused_not_crashed(catalog: FunctionCatalog) -> None:
    node: dict[str, Any] = {"type": "Literal", "value": 1}
    for _ in range(5000):
        node = {"type": "Function", "name": "plus", "arguments": {"type": "ExpressionList",
                                                                  "children": [node]}}  # fmt: skip
    ast = {"type": "SelectWithUnionQuery", "list_of_selects": node}
    with pytest.raises(ReadOnlyQueryError, match="nested too deeply"):
        analyst_sql.check("SELECT …", ast, catalog)


# -- functions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("count", True), ("COUNT", True), ("sumIf", True), ("uniqMergeState", True),
        ("quantilesIf", True), ("date_diff", True), ("DATE_DIFF", True), ("SUBSTRING", True),
        ("lambda", True), ("formatReadableSize", True),
        ("file", False), ("dictGet", False), ("sleep", False), ("aiGenerate", False),
        ("getServerSetting", False), ("fileIf", False), ("noSuchFunction", False), ("", False),
    ],
)  # fmt: skip
def test_function_allowlist(catalog: FunctionCatalog, name: str, allowed: bool) -> None:
    assert catalog.allowed(name) is allowed


def test_function_catalog_resolves_spellings(catalog: FunctionCatalog) -> None:
    assert catalog.canonical("COUNT") == "count"
    assert catalog.canonical("date_diff") == "dateDiff"
    assert catalog.canonical("noSuchFunction") == "noSuchFunction"


# -- errors never carry ClickHouse's text, logs never the statement ----------------------------


def test_parse_failures() -> None:
    multi = analyst_sql.parse_failure(
        62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): failed at "
        "position 9 (end of query): ; INSERT INTO t VALUES ('secret')"
    )  # fmt: skip
    assert isinstance(multi, ReadOnlyQueryError) and multi.reason == "multiple statements"
    syntax = analyst_sql.parse_failure(62, "SYNTAX_ERROR", "failed at position 3 ('secret')")
    assert isinstance(syntax, AnalystQueryError) and str(syntax) == "syntax error at position 3"
    other = analyst_sql.parse_failure(36, "BAD_ARGUMENTS", "INSERT with inline data 'secret'")
    assert isinstance(other, ReadOnlyQueryError) and other.reason == "not a SELECT"


def test_run_failures_name_the_error_only() -> None:
    error = analyst_sql.run_failure(6, "CANNOT_PARSE_TEXT")
    assert str(error) == "ClickHouse refused the statement: CANNOT_PARSE_TEXT (code 6)"
    assert "30 s" in str(analyst_sql.run_failure(159, "TIMEOUT_EXCEEDED"))


def test_fingerprint_does_not_carry_the_statement() -> None:
    sql = "SELECT 'hunter2-secret'"
    named = analyst_sql.fingerprint(sql)
    assert named["sql_chars"] == len(sql) and len(named["sql_sha256"]) == 16
    assert "hunter2" not in json.dumps(named)


# -- settings and tables ---------------------------------------------------------------------


def test_readonly_is_the_last_setting_and_limits_are_set() -> None:
    settings = analyst_sql.ANALYST_SETTINGS
    assert list(settings)[-1] == "readonly" and settings["readonly"] == 1
    for limit in ("max_execution_time", "max_memory_usage", "max_result_rows"):
        assert int(settings[limit]) > 0, limit


def test_result_ceiling_matches_the_api() -> None:
    from api.models.sql import SqlQuery

    (le,) = [m.le for m in SqlQuery.model_fields["max_rows"].metadata if hasattr(m, "le")]
    assert analyst_sql.ANALYST_SETTINGS["max_result_rows"] == le == analyst_sql.MAX_RESULT_ROWS


def test_project_tables_are_every_table_the_projections_create() -> None:
    from pipeline.projections import ALL_DDL

    create = re.compile(r"CREATE (?:MATERIALIZED )?(?:TABLE|VIEW) IF NOT EXISTS (\w+)")
    created = {name for ddl in ALL_DDL for name in create.findall(ddl)}
    assert created == analyst_sql.PROJECT_TABLES
    assert "accounts" not in analyst_sql.ALLOWED_TABLES
    assert analyst_sql.ALLOWED_TABLES <= analyst_sql.PROJECT_TABLES


def test_the_server_analyst_user_matches_the_policy() -> None:
    """deploy/clickhouse/analyst.xml: the profile is ANALYST_SETTINGS, the grants are the
    analyst tables, and of event_log every column but the hidden ones."""
    import xml.etree.ElementTree as ElementTree

    from pipeline.projections import event_log

    root = ElementTree.parse(Path(__file__).parents[3] / "deploy/clickhouse/analyst.xml").getroot()
    profile = {e.tag: e.text for e in root.find("profiles/analyst")}  # type: ignore[union-attr]
    assert profile == {k: str(v) for k, v in analyst_sql.ANALYST_SETTINGS.items()}
    grants = [q.text or "" for q in root.iterfind("users/analyst/grants/query")]
    granted = {}
    for grant in grants:
        match = re.fullmatch(
            r"GRANT SELECT(?:\((?P<columns>[^)]*)\))? ON default\.(?P<table>\w+)", grant
        )
        assert match, grant
        columns = match["columns"]
        granted[match["table"]] = {c.strip() for c in columns.split(",")} if columns else None
    assert set(granted) == analyst_sql.ALLOWED_TABLES
    visible = set(event_log.COLUMNS) - analyst_sql.HIDDEN_COLUMNS["event_log"]
    assert granted.pop("event_log") == visible
    assert all(columns is None for columns in granted.values())


# -- the retry runs only a Select ------------------------------------------------------------


class FlakyClient:
    """raw_query answers with another call's output in front of ours, then cleanly."""

    def __init__(self, corrupt: int) -> None:
        self.corrupt = corrupt
        self.calls: list[tuple[str, Any]] = []

    def raw_query(self, sql: str, parameters: Any = None, fmt: str | None = None) -> bytes:
        self.calls.append((sql, parameters))
        good = b'{"meta": [{"name": "1"}], "data": [[1]]}'
        if len(self.calls) <= self.corrupt:
            return b"1\n" + good
        return good


def test_a_corrupted_answer_is_retried_once() -> None:
    client = FlakyClient(corrupt=1)
    assert _json_sync(client, Select("SELECT 1"))["data"] == [[1]]  # type: ignore[arg-type]
    assert client.calls == [("SELECT 1", None), ("SELECT 1", None)]
    with pytest.raises(ConnectorError, match="corrupted"):
        _json_sync(FlakyClient(corrupt=2), Select("SELECT 1"))  # type: ignore[arg-type]


class FakeEngine:
    """Parses from the fixture (as PARSE_SQL would) and runs nothing: records each call;
    the first ``corrupt`` answers to anything but the parse come back corrupted."""

    def __init__(self, fixture: dict[str, Any], corrupt: int = 0) -> None:
        self.fixture = fixture
        self.corrupt = corrupt
        self.ran: list[Select] = []

    def raw_query(self, sql: str, parameters: Any = None, fmt: str | None = None) -> bytes:
        if sql == analyst_sql.PARSE_SQL:
            parsed = self.fixture["parsed"][parameters["sql"]]
            row = [parsed["canonical"], json.dumps(parsed["ast"])]
            return json.dumps({"meta": [], "data": [row]}).encode()
        self.ran.append(Select(sql, parameters))
        answer = b'{"meta": [{"name": "n"}], "data": [[1], [2], [3]]}'
        return b"1\n" + answer if len(self.ran) <= self.corrupt else answer

    def close(self) -> None:
        pass


async def _run(engine: FakeEngine, catalog: FunctionCatalog, sql: str) -> Any:
    from connectors.clickhouse import ClickHouse, _Analyst

    clickhouse = ClickHouse(engine, dsn=None)  # type: ignore[arg-type]
    clickhouse._analyst = _Analyst(executor=engine, parser=engine, catalog=catalog)  # type: ignore[arg-type]
    try:
        return await clickhouse.query_readonly(sql, max_rows=2)
    finally:
        clickhouse.close()


async def test_only_the_checked_canonical_statement_runs_and_is_retried(
    fixture: dict[str, Any], catalog: FunctionCatalog
) -> None:
    engine = FakeEngine(fixture, corrupt=1)
    assert await _run(engine, catalog, "SELECT 1;") == (["n"], [(1,), (2,)])  # max_rows=2
    # the canonical text, not the analyst's; run again after the corrupted answer
    assert engine.ran == [Select("SELECT 1"), Select("SELECT 1")]


async def test_a_refused_statement_never_runs(
    fixture: dict[str, Any], catalog: FunctionCatalog
) -> None:
    engine = FakeEngine(fixture)
    with pytest.raises(ReadOnlyQueryError, match="table not allowed: accounts"):
        await _run(engine, catalog, "SELECT password_hash FROM accounts")
    assert engine.ran == []


# -- the route ---------------------------------------------------------------------------------


class FakeClickHouse:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def query_readonly(self, sql: str, **kwargs: Any) -> tuple[list[str], list[tuple]]:
        self.calls.append({"sql": sql, **kwargs})
        if self.error is not None:
            raise self.error
        return ["n"], [(1,)]


def _client(clickhouse: FakeClickHouse, analyst_dsn: str = "") -> httpx.AsyncClient:
    app = FastAPI()
    problems.install(app)
    app.include_router(sql_route.router)
    settings = SimpleNamespace(analyst_clickhouse_dsn=analyst_dsn)
    app.state.services = SimpleNamespace(clickhouse=clickhouse, settings=settings)
    app.dependency_overrides[deps._reader] = lambda: Principal(user_id="a-1", role="admin")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


@pytest.mark.parametrize(
    ("error", "status", "kind", "reason"),
    [
        (ReadOnlyQueryError("table not allowed: accounts"), 400, "/problems/sql-not-allowed",
         "table not allowed: accounts"),
        (AnalystQueryError("syntax error at position 7"), 400, "/problems/bad-sql", None),
        (ConnectorError("corrupted ClickHouse response"), 503, "/problems/unavailable", None),
    ],
)  # fmt: skip
async def test_route_errors_are_problems(
    error: Exception, status: int, kind: str, reason: str | None
) -> None:
    async with _client(FakeClickHouse(error)) as client:
        response = await client.post("/api/admin/sql", json={"sql": "SELECT 'secret'"})
    assert response.status_code == status
    assert response.headers["content-type"] == problems.MEDIA_TYPE
    body = response.json()
    assert body["type"] == kind and body.get("reason") == reason
    assert "secret" not in response.text


async def test_route_passes_the_analyst_dsn() -> None:
    clickhouse = FakeClickHouse()
    async with _client(clickhouse, analyst_dsn="http://analyst:pw@ch:8123/default") as client:
        response = await client.post("/api/admin/sql", json={"sql": "SELECT 1", "max_rows": 5})
    assert response.json() == {"columns": ["n"], "rows": [[1]]}
    assert clickhouse.calls == [
        {"sql": "SELECT 1", "max_rows": 5, "analyst_dsn": "http://analyst:pw@ch:8123/default"}
    ]


def _dump(captured: dict[str, Any]) -> str:
    """JSON with one line per statement and per function, so a diff shows what changed."""

    def one(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    parsed = ",\n".join(f"  {one(sql)}: {one(v)}" for sql, v in captured["parsed"].items())
    functions = ",\n".join(f"  {one(row)}" for row in captured["functions"])
    return (
        f'{{\n "engine": {one(captured["engine"])},\n'
        f' "combinators": {one(captured["combinators"])},\n'
        f' "functions": [\n{functions}\n ],\n "parsed": {{\n{parsed}\n }}\n}}\n'
    )


if __name__ == "__main__":
    captured = _dump(capture())
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if captured == FIXTURE.read_text() else "analyst_sql_asts.json is stale")
    FIXTURE.write_text(captured)
