"""Helpers for tests that drive real services: the serve process, waiting, Kafka reads."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import Consumer, TopicPartition

from deploy.processes import free_port
from deploy.secrets import claim_keys
from pipeline.common.settings import Settings
from pipeline.write.routing import ClaimKeys

T = TypeVar("T")
ADMIN_PASSWORD = "admin-password-for-tests"
REPO = Path(__file__).resolve().parents[1]


PROBLEM = "application/problem+json"  # the content type of every error answer


def new_user(prefix: str, **over: Any) -> dict[str, Any]:
    """The body of ``POST /api/admin/users`` for a new student of its own: username
    ``<prefix>_<tag>`` and e-mail ``<prefix>-<tag>@example.com`` with a fresh ``tag`` each
    call, so tests that share the session's serve process never collide; ``over`` replaces
    any key."""
    tag = uuid.uuid4().hex[:10]
    return {
        "username": f"{prefix}_{tag}",
        "email": f"{prefix}-{tag}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "student",
        "password": "correct horse battery",
        **over,
    }


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server of a test's own on 127.0.0.1, on a port the system picks."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (``http.server`` writes each request to stderr)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    redis_url: str


def wait_for(
    probe: Callable[[], T | None], *, timeout_s: float, what: str, every_s: float = 0.1
) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {last!r}")


class ServeProcess:
    """A real ``streamfold serve`` subprocess (API + agents + embedded ClickHouse)."""

    def __init__(self, endpoints: Endpoints, home: Path, **overrides: str) -> None:
        self.env = {
            **os.environ,
            "STREAMFOLD_ENV": "test",
            "STREAMFOLD_HOME": str(home),
            "STREAMFOLD_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
            "STREAMFOLD_REDIS_URL": endpoints.redis_url,
            "STREAMFOLD_API_PORT": str(free_port()),
            "STREAMFOLD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "STREAMFOLD_PROJECTION_BATCH_MS": "200",
            **{f"STREAMFOLD_{k.upper()}": v for k, v in overrides.items()},
        }
        self.settings = Settings(
            **{
                k[len("STREAMFOLD_") :].lower(): v
                for k, v in self.env.items()
                if k.startswith("STREAMFOLD_")
            }
        )
        self.log_path = home / "serve.log"
        self.last_lag: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "serve"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for(self._ready, timeout_s=timeout_s, what="/readyz", every_s=0.3)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- serve log tail ---\n{self.log_tail()}") from exc

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return httpx.get(f"{self.settings.api_url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no commit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def create_admin(self) -> subprocess.CompletedProcess[str]:
        """``streamfold create-admin`` against this process; its output, or AssertionError."""
        done = subprocess.run(
            [sys.executable, "-m", "deploy.cli", "create-admin"],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"create-admin failed: {done.stdout}\n{done.stderr}\n{self.log_tail()}"
            )
        return done

    def claim_keys(self) -> ClaimKeys:
        """The install's claim keys, as the serve process made them (``<home>/claims-key``)."""
        return claim_keys(self.settings)

    def lag(self) -> dict[str, int]:
        """Consumer lag per topic, measured after this call began (/readyz reuses an
        answer for a second: an older one could predate records just produced)."""
        asked_at = time.time()
        while True:
            body = httpx.get(f"{self.settings.api_url}/readyz", timeout=10).json()
            if body.get("checked_at", asked_at) >= asked_at:
                return body.get("checks", {}).get("lag", {})
            time.sleep(0.2)

    def drained(self, topics: tuple[str, ...] | None = None) -> bool:
        """``topics`` (default: every worker topic) fully committed by their consumer
        groups; ``last_lag`` keeps the last answer for failure messages."""
        try:
            self.last_lag = self.lag()
        except (httpx.HTTPError, ValueError) as exc:
            self.last_lag = {"error": str(exc)}
            return False
        wanted = {t: v for t, v in self.last_lag.items() if topics is None or t in topics}
        return bool(wanted) and all(v == 0 for v in wanted.values())


def admin_token(server: ServeProcess) -> str:
    def login() -> str | None:
        response = httpx.post(
            f"{server.settings.api_url}/api/auth/token",
            data={"username": server.settings.admin_email, "password": ADMIN_PASSWORD},
            timeout=30,
        )
        return response.json()["access_token"] if response.status_code == 200 else None

    # the admin's row reaches the read model shortly after create-admin's result
    return wait_for(login, timeout_s=30, what="admin login")


def read_topic(bootstrap: str, topic: str, *, timeout_s: float = 30) -> list[Any]:
    """Every committed record of ``topic`` from offset 0 up to the current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {}
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[Any] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                # transaction markers occupy offsets: a partition is done when its position
                # reaches the end even if the last offset was a marker.
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    if tp.offset >= ends[tp.partition]:
                        done.add(tp.partition)
                continue
            if msg.error():
                continue
            records.append(msg)
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        if len(done) < len(ends):
            raise AssertionError(f"read {len(records)} records of {topic}; not at the end yet")
        return records
    finally:
        consumer.close()


def sql(client: httpx.Client, query: str) -> list[dict[str, Any]]:
    response = client.post("/api/admin/sql", json={"sql": query, "max_rows": 100_000})
    if response.status_code != 200:
        raise AssertionError(f"{query!r}: {response.status_code} {response.text}")
    body = response.json()
    return [dict(zip(body["columns"], row, strict=True)) for row in body["rows"]]


BROWSER_DIR = REPO / "tests" / "browser"


def ensure_browser_sdk() -> Path:
    """``tests/browser/node_modules`` with Segment's browser SDK from npm, as
    ``tests/browser/package-lock.json`` pins it (``npm ci``, once per lock: ~5 s from the
    registry). Raises ``RuntimeError`` when npm is missing or the install fails."""
    modules = BROWSER_DIR / "node_modules"
    wanted = json.loads((BROWSER_DIR / "package.json").read_text())["dependencies"]
    installed = modules / "@segment" / "analytics-next" / "package.json"
    if installed.is_file():
        version = json.loads(installed.read_text())["version"]
        if version == wanted["@segment/analytics-next"]:
            return modules
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the browser tests load Segment's SDK from npm")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=BROWSER_DIR, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {BROWSER_DIR} failed: {done.stderr[-2000:]}")
    return modules
