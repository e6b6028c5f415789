"""``streamfold serve`` as a supervisor of one process per role, on the real stack."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from deploy.supervisor import read_status
from tests.support import Endpoints, ServeProcess, wait_for

pytestmark = pytest.mark.integration


def children(server: ServeProcess) -> dict[str, dict[str, object]]:
    rows = read_status(server.settings.home.resolve() / "run" / "children.json")
    return {f"{r['role']}-{r['index']}": r for r in rows}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def test_serve_supervises_one_process_per_role(
    endpoints: Endpoints, server: ServeProcess, tmp_path: Path
) -> None:
    """One process per role; a dead child is restarted alone; a SIGKILLed serve takes
    every child with it and a new one starts on the same home; SIGTERM stops every role
    cleanly. Own consumer groups (app id), the session's install's claims key (as
    ``test_graceful_stop``)."""
    key = (server.settings.home / "claims-key").read_text().strip()
    own = ServeProcess(endpoints, tmp_path, app_id="supervisor-test", claims_key=key,
                       api_workers="2")  # fmt: skip
    own.start()
    try:
        _a_dead_child_is_restarted(own)
        _a_sigkilled_serve_leaves_no_child(own)
        _sigterm_stops_every_role(own)
    finally:
        own.kill()


def _a_dead_child_is_restarted(own: ServeProcess) -> None:
    before = children(own)
    assert set(before) == {"sinks-0", "commands-0", "validation-0", "api-0", "api-1"}
    pids = {name: int(str(row["pid"])) for name, row in before.items()}
    assert len(set(pids.values())) == 5 and all(alive(p) for p in pids.values())

    os.kill(pids["validation-0"], signal.SIGKILL)
    restarted = wait_for(
        lambda: (
            (row := children(own).get("validation-0"))
            and row["pid"] != pids["validation-0"]
            and row
        ),
        timeout_s=30,
        what="the validation process started again",
    )
    assert restarted["restarts"] == 1
    assert alive(int(str(restarted["pid"])))
    assert "child exited; restarting" in own.log_path.read_text()
    after = children(own)
    assert all(after[n]["pid"] == pids[n] for n in pids if n != "validation-0")
    wait_for(
        lambda: httpx.get(f"{own.settings.api_url}/readyz", timeout=10).status_code == 200,
        timeout_s=60,
        what="/readyz after the restart",
    )


def _a_sigkilled_serve_leaves_no_child(own: ServeProcess) -> None:
    pids = [int(str(r["pid"])) for r in children(own).values()]
    own.kill()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if alive(p)], "children outlived a SIGKILLed serve"
    own.start()  # the engine's lock and the port are free again


def _sigterm_stops_every_role(own: ServeProcess) -> None:
    pids = [int(str(r["pid"])) for r in children(own).values()]
    assert own.proc is not None
    own.proc.send_signal(signal.SIGTERM)
    assert own.proc.wait(90) == 0
    assert not [p for p in pids if alive(p)]
    log = own.log_path.read_text()
    for role in ("api", "validation", "commands", "sinks", "serve"):
        assert f"event='stopped' role='{role}'" in log, role


def test_the_api_serves_and_stops_under_uvicorn(
    endpoints: Endpoints, server: ServeProcess, tmp_path: Path
) -> None:
    """``STREAMFOLD_HTTP=httptools`` (uvicorn; every other test runs the default, granian):
    two API processes share the port, answer through the whole ASGI stack (problems, body
    limit, metrics), and stop cleanly on SIGTERM."""
    key = (server.settings.home / "claims-key").read_text().strip()
    own = ServeProcess(endpoints, tmp_path, app_id="uvicorn-test", claims_key=key,
                       api_workers="2", http="httptools")  # fmt: skip
    own.start()  # /readyz answered 200 through uvicorn
    try:
        assert set(children(own)) >= {"api-0", "api-1"}
        base = own.settings.api_url
        with httpx.Client(base_url=base, timeout=10) as client:
            # new connections: the kernel spreads them over both processes' sockets
            assert all(
                httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
                for _ in range(20)
            )
            no_key = client.post("/v1/batch", json={"batch": []})
            assert no_key.status_code == 401
            assert no_key.headers["content-type"] == "application/problem+json"
            too_big = client.post(
                "/v1/batch",
                content=b"x" * (own.settings.max_body_bytes + 1),
                headers={"Authorization": "Basic eDo=", "content-type": "application/json"},
            )
            assert too_big.status_code == 413, too_big.text
            assert "streamfold_http_requests_total" in client.get("/metrics").text
        assert "server='uvicorn'" in own.log_path.read_text()
        _sigterm_stops_every_role(own)
    finally:
        own.kill()
