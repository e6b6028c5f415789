"""``make run``'s sequence from a cold start: a new home, a new broker, a new Redis, and
each step run the moment the one before returns, as a new user's machine runs it.

The steps are the CLI commands the Makefile runs (``up``, ``create-admin``,
``load-users``, ``load-identity``, ``load-weblogs``), on a slice of the same files so the
test stays short.
A step that only works once a read model has caught up fails here, not on a new machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.processes import free_port, pid_alive
from tests.support import REPO

pytestmark = pytest.mark.e2e

DATA = REPO / "deploy" / "data"


def _head(source: Path, target: Path, lines: int) -> Path:
    with source.open(encoding="utf-8", errors="replace") as f:
        target.write_text("".join(line for _, line in zip(range(lines), f, strict=False)))
    return target


@pytest.fixture
def cold_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for the CLI with a fresh home and ports nobody else uses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMFOLD_")}
    env |= {
        "STREAMFOLD_HOME": str(tmp_path / "home"),
        "STREAMFOLD_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "STREAMFOLD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "STREAMFOLD_API_PORT": str(free_port()),
    }
    try:
        yield env
    finally:
        cli(env, "down", check=False)


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        log = Path(env["STREAMFOLD_HOME"]) / "logs" / "serve.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise AssertionError(
            f"streamfold {' '.join(args)} exited {done.returncode}\n{done.stdout}\n"
            f"{done.stderr}\n--- serve log tail ---\n{tail}"
        )
    return done


def test_make_run_sequence_from_a_cold_start(cold_env: dict[str, str], tmp_path: Path) -> None:
    people = _head(DATA / "us-500.csv", tmp_path / "people.csv", 41)
    nasa = _head(DATA / "nasa_19950801.tsv", tmp_path / "nasa.tsv", 301)
    apache = _head(DATA / "apache_logs.log", tmp_path / "apache.log", 300)

    cli(cold_env, "up")
    admin = cli(cold_env, "create-admin")
    assert "admin login works" in admin.stderr
    home = Path(cold_env["STREAMFOLD_HOME"])
    # the password goes to a file only, never to the terminal
    password = (home / "admin-password").read_text().strip()
    assert password not in admin.stdout + admin.stderr

    users = cli(cold_env, "load-users", str(people))
    assert "users: 40 accepted" in users.stdout, users.stdout
    # prospects right after the people: merges and conversions must not race a read model
    identity = cli(cold_env, "load-identity", str(people), "--count", "20")
    assert "  20  create: ok" in identity.stdout, identity.stdout
    assert "merge: ok" in identity.stdout and "convert: ok" in identity.stdout, identity.stdout
    assert "/identity" in identity.stdout, identity.stdout
    weblogs = cli(
        cold_env, "load-weblogs", "--nasa", str(nasa), "--apache", str(apache), "--wait-s", "120"
    )
    assert "in ClickHouse" in weblogs.stdout, weblogs.stdout

    partner = json.loads((home / "weblogs-partner.json").read_text())
    api = f"http://127.0.0.1:{cold_env['STREAMFOLD_API_PORT']}"
    stats = httpx.get(
        f"{api}/v1/analytics/stats",
        headers={"Authorization": f"Bearer {partner['read_token']}"},
        timeout=30,
    )
    assert stats.status_code == 200, stats.text
    assert stats.json()["totals"]["events"] > 0
    assert partner["read_token"] in weblogs.stdout  # make run prints it
    write_key_reads = httpx.get(
        f"{api}/v1/analytics/stats", headers={"X-API-Key": partner["api_key"]}, timeout=30
    )
    assert write_key_reads.status_code == 403, write_key_reads.text

    status = json.loads(cli(cold_env, "status", "--json").stdout)
    pids = [s["pid"] for s in status["services"] if s["running"]]
    running = {s["name"] for s in status["services"] if s["running"]}
    roles = {"sinks-0", "commands-0", "validation-0", "api-0"}
    assert {"kafka", "redis", "serve", *(f"serve/{r}" for r in roles)} <= running, running
    cli(cold_env, "down")
    assert not any(pid_alive(pid) for pid in pids)
    # every role stopped in order, once: serve's own verdict (a child signalled by down
    # directly as well died of the second SIGTERM, code -15)
    serve_log = (home / "logs" / "serve.log").read_text()
    assert "event='stopped' role='serve' clean=True" in serve_log, serve_log[-3000:]
    # a cold start that only works because the supervisor restarted a crashed role is a
    # bug (seen: two roles racing to make the claims key; a cache read racing its TTL)
    assert "child exited; restarting" not in serve_log, serve_log[-6000:]
