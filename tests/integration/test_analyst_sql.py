"""Analyst SQL against a real engine: every attack is refused and leaves no trace; what
analysts run still runs.

Two engines: the serve process's chdb through ``POST /api/admin/sql`` (the ``admin``
fixture), and a fresh chdb directory driven through ``ClickHouse.query_readonly`` in a
subprocess of its own (chdb allows one data path per process), which also checks the
analyst session's settings and that the projections' session can still write.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ADMIN_PASSWORD, REPO, ServeProcess, sql, wait_for

pytestmark = pytest.mark.integration

SECRET = "s3cret-" + uuid.uuid4().hex  # planted where an attacker would read it
MARKER = uuid.uuid4().hex[:12]

# (name, statement, reason). {dir}: a directory both processes can reach; {port}: a local
# HTTP server that counts requests; {victim}: the user_id an ALTER would delete.
ATTACKS: list[tuple[str, str, str]] = [
    ("insert-in-the-middle",
     "SELECT 1; INSERT INTO tracking_rejections (system_id, message_id) "
     f"VALUES ('attack', '{MARKER}'); SELECT 2", "multiple statements"),
    ("alter-delete-in-the-middle",
     "SELECT 1; ALTER TABLE users DELETE WHERE user_id = '{victim}' "
     "SETTINGS mutations_sync = 2; SELECT 2", "multiple statements"),
    ("create-in-the-middle",
     f"SELECT 1; CREATE TABLE attack_{MARKER} (x UInt8) ENGINE = Memory; SELECT 2",
     "multiple statements"),
    ("outfile-in-the-middle",
     "SELECT 1; SELECT 'x' INTO OUTFILE '{dir}/middle.tsv' FORMAT TSV; SELECT 1",
     "multiple statements"),
    ("outfile", "SELECT 'x' INTO OUTFILE '{dir}/alone.tsv'", "INTO OUTFILE"),
    ("file-admin-password", "SELECT * FROM file('{dir}/admin-password', 'LineAsString')",
     "table function not allowed: file"),
    ("file-environ", "SELECT * FROM file('/proc/self/environ', 'LineAsString')",
     "table function not allowed: file"),
    ("file-passwd", "SELECT * FROM file('/etc/passwd', 'LineAsString')",
     "table function not allowed: file"),
    ("file-scalar", "SELECT file('{dir}/admin-password')", "function not allowed: file"),
    ("file-apply", "SELECT COLUMNS('p') APPLY file FROM (SELECT '{dir}/admin-password' AS p)",
     "function not allowed: file"),
    ("url", "SELECT * FROM url('http://127.0.0.1:{port}/healthz', 'LineAsString')",
     "table function not allowed: url"),
    ("accounts", "SELECT user_id, password_hash FROM accounts", "table not allowed: accounts"),
    ("password-hash-in-event-log",
     "SELECT data FROM event_log WHERE event_type = 'UserCreated'",
     "column not allowed: event_log.data"),
    ("event-log-star", "SELECT * FROM event_log",
     "column not allowed: event_log.data (name the columns)"),
    ("settings-readonly-0", "SELECT 1 SETTINGS readonly = 0", "SETTINGS clause"),
    ("system-tables", "SELECT database, name FROM system.tables",
     "table not allowed: system.tables"),
]  # fmt: skip

LEGITIMATE: list[str] = [
    "SELECT role, count() FROM users FINAL GROUP BY role",
    "SELECT event, count() FROM tracking_events GROUP BY event",
    "SELECT JSONExtractString(properties, 'path') AS path, count() AS views "
    "FROM tracking_events WHERE event = 'page_view' GROUP BY path ORDER BY views DESC LIMIT 10",
    "WITH per_role AS (SELECT role, count() AS n FROM users FINAL GROUP BY role) "
    "SELECT sum(n) FROM per_role",
    "SELECT 'users' AS t, count() AS n FROM users "
    "UNION ALL SELECT 'events', count() FROM event_log",
    "SELECT number FROM numbers(10)",
    "SELECT event_type, count() FROM event_log GROUP BY event_type",
]


SECRETS = (SECRET, ADMIN_PASSWORD, "$argon2", "password_hash", "STREAMFOLD_", "root:x:0:0")


def _leaks(text: str) -> list[str]:
    """Secrets an answer must never carry."""
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server: (port, paths it was asked for)."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"called\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()


def _statement(template: str, **values: Any) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


# -- through the API, on the serve process's engine -------------------------------------------


@pytest.fixture(scope="module")
def victim(admin: httpx.Client) -> str:
    """A user of our own (with a UserCreated event and its password hash in event_log)."""
    tag = uuid.uuid4().hex[:10]
    created = admin.post(
        "/api/admin/users",
        json={"username": f"u_{tag}", "email": f"{tag}@example.com", "first_name": "Ada",
              "last_name": "Lovelace", "role": "student", "password": "correct horse battery"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    logged = f"SELECT count() AS n FROM event_log WHERE aggregate_id = '{user_id}'"
    projected = f"SELECT count() AS n FROM users WHERE user_id = '{user_id}'"
    wait_for(
        lambda: sql(admin, logged)[0]["n"] and sql(admin, projected)[0]["n"],
        timeout_s=30,
        what="the victim in users and event_log",
    )
    return str(user_id)


@pytest.mark.parametrize(("name", "template", "reason"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_over_the_api(
    admin: httpx.Client,
    server: ServeProcess,
    victim: str,
    listener: tuple[int, list[str]],
    tmp_path: Path,
    name: str,
    template: str,
    reason: str,
) -> None:
    (tmp_path / "admin-password").write_text(SECRET)
    port, hits = listener
    statement = _statement(template, dir=tmp_path, port=port, victim=victim)

    response = admin.post("/api/admin/sql", json={"sql": statement})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/sql-not-allowed" and body["reason"] == reason
    assert not _leaks(response.text)
    # nothing happened
    assert not hits, "the server called out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["admin-password"]
    data_dir = Path(server.settings.clickhouse_dsn.removeprefix("chdb://"))
    assert not list(data_dir.rglob(f"attack_{MARKER}*")), "a table was created"
    assert sql(admin, f"SELECT count() AS n FROM users WHERE user_id = '{victim}'")[0]["n"] >= 1
    rejections = f"SELECT count() AS n FROM tracking_rejections WHERE message_id = '{MARKER}'"
    assert sql(admin, rejections)[0]["n"] == 0
    # and the statement is not in the log verbatim
    if name == "file-admin-password":
        assert "admin-password" not in server.log_path.read_text(errors="replace")


@pytest.mark.parametrize("statement", LEGITIMATE)
def test_analyst_queries_still_run(admin: httpx.Client, victim: str, statement: str) -> None:
    response = admin.post("/api/admin/sql", json={"sql": statement})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] and not _leaks(response.text)


def test_results_are_capped_and_errors_are_short(admin: httpx.Client) -> None:
    capped = admin.post("/api/admin/sql", json={"sql": "SELECT number FROM numbers(1000)",
                                                "max_rows": 7})  # fmt: skip
    assert capped.status_code == 200 and len(capped.json()["rows"]) == 7
    syntax = admin.post("/api/admin/sql", json={"sql": "SELEC 1"})
    assert syntax.status_code == 400 and syntax.json()["detail"] == "syntax error at position 7"
    unknown = admin.post("/api/admin/sql", json={"sql": f"SELECT no_such_{MARKER} FROM users"})
    assert unknown.status_code == 400 and unknown.json()["type"] == "/problems/bad-sql"
    assert MARKER not in unknown.text  # ClickHouse's text (which quotes the SQL) stays inside


# -- the connector alone, on a fresh engine in a subprocess ----------------------------------


async def _engine_main(home: Path, port: int) -> dict[str, Any]:
    """Run in a subprocess: attacks and legitimate statements through query_readonly."""
    from connectors.clickhouse import ClickHouse
    from connectors.exceptions import ReadOnlyQueryError
    from pipeline.projections import migrate

    clickhouse = ClickHouse.open(f"chdb://{home / 'clickhouse'}")
    await migrate(clickhouse)
    await clickhouse.command(
        "INSERT INTO accounts (user_id, email, password_hash, version) "
        "VALUES ('victim', 'v@example.com', '$argon2id$v=19$m=19456,t=2,p=1$fake', 1)"
    )
    await clickhouse.command(
        "INSERT INTO users (user_id, username, role, status, version) "
        "VALUES ('victim', 'victim', 'student', 'active', 1)"
    )
    await clickhouse.command(
        "INSERT INTO event_log (event_id, event_type, aggregate_type, aggregate_id, data) "
        "VALUES (generateUUIDv4(), 'UserCreated', 'user', 'victim', "
        """'{"password_hash":"$argon2id$fake"}')"""
    )
    outcomes: dict[str, Any] = {}
    for name, template, _ in ATTACKS:
        statement = _statement(template, dir=home, port=port, victim="victim")
        try:
            columns, rows = await clickhouse.query_readonly(statement, max_rows=100)
            outcomes[name] = {"rows": json.dumps(rows, default=str)}
        except ReadOnlyQueryError as exc:
            outcomes[name] = {"reason": exc.reason}
        except Exception as exc:  # what ClickHouse let through and then failed on
            outcomes[name] = {"error": f"{type(exc).__name__}: {exc}"}
    legitimate = {}
    for statement in LEGITIMATE:
        try:
            columns, rows = await clickhouse.query_readonly(statement, max_rows=100)
            legitimate[statement] = {"columns": columns}
        except Exception as exc:
            legitimate[statement] = {"error": f"{type(exc).__name__}: {exc}"}

    async def count(where: str) -> int:
        return int((await clickhouse.query(f"SELECT count() AS n FROM {where}"))[0]["n"])

    after = {
        "victim": await count("users WHERE user_id = 'victim'"),
        "marker": await count(f"tracking_rejections WHERE message_id = '{MARKER}'"),
        "files": sorted(str(p.relative_to(home)) for p in home.rglob(f"*attack_{MARKER}*"))
        + sorted(p.name for p in home.glob("*.tsv")),
    }
    session: dict[str, Any] = {}
    analyst = getattr(clickhouse, "_analyst", None)
    if analyst is not None:
        raw = analyst.executor.raw_query(
            "SELECT getSetting('readonly'), getSetting('max_execution_time'), "
            "getSetting('max_memory_usage'), getSetting('max_result_rows')",
            fmt="JSONCompact",
        )
        session["analyst"] = json.loads(raw)["data"][0]
    # the projections' session is not read-only: a SET on the analyst's handle stays there
    await clickhouse.command("INSERT INTO users (user_id, version) VALUES ('writer', 1)")
    session["writer_wrote"] = await count("users WHERE user_id = 'writer'")
    clickhouse.close()
    return {"attacks": outcomes, "legitimate": legitimate, "after": after, "session": session}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, listener: tuple[int, list[str]]) -> dict:
    home = tmp_path_factory.mktemp("analyst-engine")
    (home / "admin-password").write_text(SECRET)
    port, _ = listener
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_analyst_sql", str(home), str(port)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["log"] = done.stdout + done.stderr
    return result


@pytest.mark.parametrize(("name", "template", "reason"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_by_the_connector(
    engine: dict[str, Any], listener: tuple[int, list[str]], name: str, template: str, reason: str
) -> None:
    outcome = engine["attacks"][name]
    assert outcome.get("reason") == reason, outcome
    assert not _leaks(json.dumps(outcome))
    assert not listener[1], "the engine called out"


def test_nothing_was_written_and_nothing_logged_verbatim(engine: dict[str, Any]) -> None:
    assert engine["after"] == {"victim": 1, "marker": 0, "files": []}
    assert MARKER not in engine["log"] and SECRET not in engine["log"]
    assert "password_hash FROM accounts" not in engine["log"]


def test_legitimate_statements_run_on_the_connector(engine: dict[str, Any]) -> None:
    failed = {s: o for s, o in engine["legitimate"].items() if "columns" not in o}
    assert not failed


def test_the_analyst_session_is_readonly_with_limits(engine: dict[str, Any]) -> None:
    from connectors.analyst_sql import ANALYST_SETTINGS

    readonly, seconds, memory, rows = engine["session"]["analyst"]
    assert int(readonly) == 1
    assert int(float(seconds)) == ANALYST_SETTINGS["max_execution_time"]
    assert int(memory) == ANALYST_SETTINGS["max_memory_usage"]
    assert int(rows) == ANALYST_SETTINGS["max_result_rows"]
    assert engine["session"]["writer_wrote"] == 1


def test_the_unit_fixture_matches_the_engine() -> None:
    """tests/unit/connectors/analyst_sql_asts.json is what this chdb parses today."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.connectors.test_analyst_sql", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-2000:]


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_engine_main(Path(sys.argv[1]), int(sys.argv[2]))), default=str))
