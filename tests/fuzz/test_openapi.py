"""schemathesis over the whole served OpenAPI spec: no request may get a 5xx.

Runs ``st run`` (schemathesis 4, its own engine: examples, coverage, fuzzing and stateful
phases, valid and invalid data, the ``not_a_server_error`` check only) against the
session's real stack (``streamfold serve`` + Kafka + Redis + chdb), twice:

- with the admin's bearer token, every phase in ``STREAMFOLD_FUZZ_PHASES`` including the
  stateful one (sequences over the links schemathesis infers: create a partner, then act
  on its id, ...);
- with a partner's API key (``Authorization: Bearer sk_live_...``), the same minus the
  stateful phase (a key can create nothing to chain from).

Path ids are drawn from existing partners, systems, users and commands half of the time
(a config file of dictionaries), so routes get past 404. The ingestion routes read their
body by hand and the served spec has no request body for them, so the spec handed to
schemathesis adds one (``INGEST_BODIES``: the Segment and snake_case event shapes);
without it every ``/v1/*`` call would be an empty body and a 400. A 5xx, a timeout (60 s) or a
connection error fails the test with schemathesis's report: each failure with a curl
command that reproduces it. Counts are read from the NDJSON report.

Why not schemathesis's pytest plugin: under pytest 9.2 its ``parametrize`` fails on
``request.node._nodeid`` (schemathesis 4.32.5); the CLI engine is also the one that runs
the stateful phase after the others, as ``st run`` users get it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fuzz.conftest import (
    FuzzPrincipals,
    FuzzTargets,
    fuzz_examples,
    fuzz_phases,
)
from tests.support import REPO, ServeProcess, wait_for

pytestmark = pytest.mark.fuzz

ST = Path(sys.executable).with_name("st")
SLOW_S = 5.0


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    phases: list[str]
    statuses: Counter[int] = field(default_factory=Counter)
    phases_sent: Counter[str] = field(default_factory=Counter)  # requests per phase
    server_errors: list[str] = field(default_factory=list)
    slow: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def failure_report(self) -> str:
        """schemathesis's own FAILURES section (each with its curl command)."""
        start = self.output.find("=== FAILURES")
        end = self.output.find("=== WARNINGS", start)
        text = self.output[start:end] if start >= 0 else self.output[-6000:]
        return text[:20_000]


_DATE = {"type": "string", "format": "date-time"}
EVENT = {
    "type": "object",
    "properties": {
        "type": {"enum": ["track", "identify", "page", "screen", "group", "alias"]},
        "event": {"type": "string"},
        "name": {"type": "string"},
        "userId": {"type": "string"},
        "user_id": {"type": "string"},
        "anonymousId": {"type": "string"},
        "anonymous_id": {"type": "string"},
        "messageId": {"type": "string"},
        "message_id": {"type": "string"},
        "groupId": {"type": "string"},
        "previousId": {"type": "string"},
        "timestamp": _DATE,
        "sentAt": _DATE,
        "properties": {"type": "object"},
        "traits": {"type": "object"},
        "context": {"type": "object"},
    },
}
BATCH = {
    "type": "object",
    "properties": {
        "batch": {"type": "array", "items": EVENT, "maxItems": 20},
        "sentAt": _DATE,
        "context": {"type": "object"},
    },
    "required": ["batch"],
}
INGEST_BODIES = {
    "/v1/batch": BATCH,
    **{f"/v1/{call}": EVENT for call in ("track", "identify", "page", "screen", "group", "alias")},
}


def _spec(server: ServeProcess, path: Path) -> Path:
    """The served /openapi.json with request bodies for the ingestion routes."""
    spec = httpx.get(f"{server.settings.api_url}/openapi.json", timeout=30).json()
    for route, schema in INGEST_BODIES.items():
        operation = spec["paths"][route]["post"]
        assert "requestBody" not in operation, f"{route} documents its body now: drop the patch"
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def _config(path: Path, targets: FuzzTargets, principals: FuzzPrincipals) -> Path:
    def values(items: list[str]) -> str:
        return json.dumps(items)

    half = "probability = 0.5"
    path.write_text(
        f"""
[dictionaries.partners]
values = {values(targets.partner_ids)}
[dictionaries.systems]
values = {values(targets.system_ids)}
[dictionaries.read-systems]
values = {values([*targets.system_ids, principals.system_id])}
[dictionaries.users]
values = {values(targets.user_ids)}
[dictionaries.commands]
values = {values(targets.command_ids)}

[parameters]
"path.partner_id" = {{ dictionary = "partners", {half} }}
"path.system_id" = {{ dictionary = "systems", {half} }}
"path.user_id" = {{ dictionary = "users", {half} }}
"path.command_id" = {{ dictionary = "commands", {half} }}
"query.system" = {{ dictionary = "read-systems", {half} }}
""",
        encoding="utf-8",
    )
    return path


def run_schemathesis(
    server: ServeProcess,
    principals: FuzzPrincipals,
    targets: FuzzTargets,
    tmp: Path,
    *,
    credential: str,
    phases: list[str],
    label: str,
) -> Run:
    reports = tmp / "reports"
    ndjson = reports / "events.ndjson"
    command = [
        str(ST),
        "--config-file",
        str(_config(tmp / "schemathesis.toml", targets, principals)),
        "run",
        str(_spec(server, tmp / "openapi.json")),
        "--url",
        server.settings.api_url,
        "--phases",
        ",".join(phases),
        "--max-examples",
        str(fuzz_examples()),
        "--mode",
        "all",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {credential}",
        "--request-timeout",
        "60",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
        "--warnings",
        "off",
        "--no-color",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "STREAMFOLD_FUZZ_PROTECTED_IDS": ",".join(principals.protected()),
    }
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=3 * 3600,
        stdin=subprocess.DEVNULL,
    )
    run = Run(done.returncode, done.stdout + done.stderr, time.monotonic() - started, phases)
    if ndjson.exists():
        _count(ndjson, run)
    (tmp / "st-output.txt").write_text(run.output)
    if keep := os.environ.get("STREAMFOLD_FUZZ_REPORT_DIR"):
        kept = Path(keep, f"{time.strftime('%Y%m%dT%H%M%S')}-{label}")
        shutil.copytree(tmp, kept)
        run.output += f"\nreports kept in {kept}"
    return run


def _count(ndjson: Path, run: Run) -> None:
    with ndjson.open(encoding="utf-8") as events:
        for line in events:
            event = json.loads(line)
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            for interaction in (finished["recorder"].get("interactions") or {}).values():
                response = interaction.get("response")
                status = response["status_code"] if response else 0  # 0: no response
                run.statuses[status] += 1
                run.phases_sent[finished.get("phase", "?")] += 1
                what = f"{interaction['request']['method']} {interaction['request']['uri']}"
                if status >= 500 or status == 0:
                    run.server_errors.append(f"{status} {what}")
                if response and response.get("elapsed", 0) > SLOW_S:
                    run.slow.append(f"{response['elapsed']:.1f} s {status} {what}")


def _summary(label: str, run: Run) -> str:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(run.statuses.items()))
    phases = ", ".join(f"{p} {run.phases_sent[p]}" for p in run.phases)
    return (
        f"fuzz {label}: {run.requests} requests in {run.seconds:.0f} s "
        f"(STREAMFOLD_FUZZ_EXAMPLES={fuzz_examples()}; {phases}); "
        f"statuses {statuses}; slower than {SLOW_S:.0f} s: {len(run.slow)}"
    )


def _still_serving(server: ServeProcess) -> bool:
    """The process is up and /readyz is green (consumers alive, backlog drained)."""
    assert server.proc is not None and server.proc.poll() is None, (
        f"serve exited during the fuzz:\n{server.log_tail()}"
    )
    try:
        return httpx.get(f"{server.settings.api_url}/readyz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def _check(label: str, run: Run, server: ServeProcess, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n{_summary(label, run)}")
        for line in run.slow[:10]:
            print(f"  slow: {line}")
    assert run.requests > 0, f"schemathesis sent nothing:\n{run.output[-4000:]}"
    assert run.returncode == 0 and not run.server_errors, (
        f"{_summary(label, run)}\n5xx/no answer: {run.server_errors[:30]}\n{run.failure_report()}"
    )
    # no 5xx is not enough: what the fuzz sent must not have stopped a consumer either
    wait_for(lambda: _still_serving(server), timeout_s=90, what="/readyz after the fuzz")


def test_no_server_error_as_admin(
    server: ServeProcess,
    fuzz_principals: FuzzPrincipals,
    fuzz_targets: FuzzTargets,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = run_schemathesis(
        server,
        fuzz_principals,
        fuzz_targets,
        tmp_path,
        credential=fuzz_principals.admin_token,
        phases=fuzz_phases(),
        label="admin",
    )
    _check("admin token", run, server, capsys)


def test_no_server_error_with_a_partner_key(
    server: ServeProcess,
    fuzz_principals: FuzzPrincipals,
    fuzz_targets: FuzzTargets,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    phases = [p for p in fuzz_phases() if p != "stateful"]
    run = run_schemathesis(
        server,
        fuzz_principals,
        fuzz_targets,
        tmp_path,
        credential=fuzz_principals.api_key,
        phases=phases,
        label="partner",
    )
    _check("partner key", run, server, capsys)
