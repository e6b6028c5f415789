"""Pause and resume a projection (issue 25, seed 004): while paused its lag shows what it
has not applied; resumed, it applies all of it from its checkpoint."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from tests.support import REPO, ServeProcess, new_user, wait_for

pytestmark = pytest.mark.e2e


def cli(server: ServeProcess, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "projections", *args],
        cwd=REPO, env=server.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def event_log(admin: httpx.Client) -> dict[str, Any]:
    [live] = [v for v in admin.get("/api/admin/projections/event_log").json()["versions"]
              if v["state"] == "live"]  # fmt: skip
    return live


def test_a_paused_projection_lags_and_resumes_without_loss(
    admin: httpx.Client, server: ServeProcess
) -> None:
    assert "paused" in cli(server, "pause", "event_log")
    try:
        assert event_log(admin)["paused"] is True
        made = [admin.post("/api/admin/users", json=new_user("paused")) for _ in range(3)]
        assert all(m.status_code == 201 for m in made), [m.text for m in made]
        ids = [m.json()["id"] for m in made]
        # the users read model goes on; the paused archive does not
        wait_for(lambda: all(admin.get(f"/api/admin/users/{i}").status_code == 200 for i in ids),
                 timeout_s=20, what="the users read model")  # fmt: skip
        assert event_log(admin)["lag"] >= 3
        assert all(admin.get(f"/api/admin/users/{i}/history").status_code == 404 for i in ids)
    finally:
        assert "resumed" in cli(server, "resume", "event_log")
    wait_for(
        lambda: all(admin.get(f"/api/admin/users/{i}/history").status_code == 200 for i in ids),
        timeout_s=30, what="the archive to apply what came during the pause",
    )  # fmt: skip
    assert event_log(admin)["paused"] is False
