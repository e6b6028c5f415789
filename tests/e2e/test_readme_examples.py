"""The README's examples, run as written by bash against a stack in the state ``make run``
leaves (admin password file, people, the demo partner with page views from 1995 and 2015).

The ``sh`` blocks of the sections in ``SECTIONS`` are cut into commands (a line ending in a
backslash goes on) and run in order in one bash with ``set -euo pipefail``; ``curl`` gets
``--fail-with-body``, so a non-2xx answer stops the block. Every curl that prints must print
JSON; every other command that prints must print something. The blocks find the stack
through ``API`` and ``STREAMFOLD_HOME``, as the README says.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import subprocess
from datetime import datetime
from itertools import islice

import httpx
import pytest

from deploy import batch_sender, demo_partner, weblogs
from deploy.loading import load_people
from pipeline.common.settings import Settings
from pipeline.projections.tracking import queries as q
from tests.support import ADMIN_PASSWORD, REPO, ServeProcess, admin_token, wait_for

pytestmark = pytest.mark.e2e

README = REPO / "README.md"
SECTIONS = (
    "Users", "Partner tracking", "Track a website", "Social timelines", "Identity",
    "Runbook: rebuild",
    "A new projection",
)  # fmt: skip
PEOPLE = 12  # rows of deploy/data/us-500.csv; the first is a gmail address
PAGE_VIEWS = 150  # per web log
DONE = "@@readme-command-done@@"
PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z _-]*>")  # <id>, <system id>
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def section_blocks(markdown: str, heading: str) -> list[str]:
    """The ``sh`` code blocks under the first heading whose text starts with ``heading``,
    up to the next heading of any level."""
    blocks: list[str] = []
    inside = False
    block: list[str] | None = None
    for line in markdown.splitlines():
        if block is not None:
            if line.startswith("```"):
                blocks.append("\n".join(block))
                block = None
            else:
                block.append(line)
        elif line.startswith("#"):
            if inside:
                break
            inside = line.lstrip("#").strip().startswith(heading)
        elif inside and line.strip() == "```sh":
            block = []
    return blocks


def commands(block: str) -> list[str]:
    """One entry per shell command: continued lines joined, blanks and comments dropped."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending += line
        if line.endswith("\\"):
            pending += "\n"
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            out.append(pending)
        pending = ""
    return out


def script(cmds: list[str]) -> str:
    """Bash that stops at the first failure and prints ``DONE`` after each command."""
    lines = ["set -euo pipefail", 'curl() { command curl --fail-with-body "$@"; }']
    for cmd in cmds:
        lines += [cmd, f"printf '\\n%s\\n' '{DONE}'"]
    return "\n".join(lines) + "\n"


def test_commands_split_on_unescaped_line_ends() -> None:
    block = "A=1 \\\n  B=2\n\n# a comment\ncurl -s x \\\n  | python3 -c 'y'"
    assert commands(block) == ["A=1 \\\n  B=2", "curl -s x \\\n  | python3 -c 'y'"]


@pytest.fixture(scope="module")
def made_run(
    server: ServeProcess, admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> ServeProcess:
    """The session's stack with what ``make run`` adds, in small: the admin password file,
    ``PEOPLE`` people through the API, the demo partner (``weblogs-partner.json``) and
    ``PAGE_VIEWS`` page views from each web log, stored."""
    settings = server.settings
    home = settings.home.resolve()
    (home / "admin-password").write_text(ADMIN_PASSWORD + "\n")
    token = admin_token(server)

    people = tmp_path_factory.mktemp("people") / "people.csv"
    with (REPO / "deploy/data/us-500.csv").open(newline="") as src:
        people.write_text("".join(islice(src, PEOPLE + 1)))
    with people.open(newline="") as f:
        gmail = sum("@gmail." in row["email"] for row in csv.DictReader(f))
    assert gmail, "the README lists users by search=gmail"
    load_people(settings, token, people, concurrency=4)
    wait_for(
        lambda: admin.get("/api/admin/users", params={"search": "gmail"}).json()["total"] >= gmail,
        timeout_s=30,
        what="the people in the users read model",
    )

    demo = demo_partner.setup_partner(settings.api_url, token, home / "weblogs-partner.json")
    partner_id, system_id, api_key = demo["partner_id"], demo["system_id"], demo["api_key"]
    events = [
        *islice(weblogs.parse_nasa(REPO / "deploy/data/nasa_19950801.tsv"), PAGE_VIEWS),
        *islice(weblogs.parse_apache(REPO / "deploy/data/apache_logs.log"), PAGE_VIEWS),
    ]
    sent = asyncio.run(batch_sender.send_events(settings.api_url, api_key, events))
    assert sent.get("accepted") == len(events), sent
    *_, stored = demo_partner.wait_for_pipeline(
        settings.api_url, token, partner_id, system_id, len(events), timeout_s=60
    )
    assert stored, "the page views did not reach ClickHouse"

    # What broke the README's timeseries example: data this far apart exceeds the bucket
    # limit when the default range spans all of it.
    bounds = admin.get("/v1/analytics/bounds", params={"system": system_id}).json()
    first, last = (datetime.fromisoformat(bounds[k]) for k in ("first_at", "last_at"))
    assert q.bucket_count(first, last, "hour") > q.MAX_BUCKETS
    return server


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_examples_run_as_written(made_run: ServeProcess, section: str) -> None:
    blocks = section_blocks(README.read_text(), section)
    assert blocks, f"no sh block under a README heading starting with {section!r}"
    env = {**made_run.env, "API": made_run.settings.api_url}
    for block in blocks:
        assert not PLACEHOLDER.search(block), f"a placeholder to fill in by hand:\n{block}"
        cmds = commands(block)
        done = subprocess.run(
            ["bash", "-c", script(cmds)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs = done.stdout.split(f"\n{DONE}\n")
        finished = len(outputs) - 1
        assert done.returncode == 0, (
            f"README {section!r}: exit {done.returncode} at\n{cmds[min(finished, len(cmds) - 1)]}"
            f"\n--- stdout ---\n{outputs[-1][-2000:]}\n--- stderr ---\n{done.stderr[-2000:]}"
        )
        assert finished == len(cmds)
        for cmd, out in zip(cmds, outputs, strict=False):
            if ASSIGNMENT.match(cmd):
                assert not out.strip(), f"an assignment printed:\n{cmd}\n{out}"
            elif cmd.startswith("curl "):
                try:
                    json.loads(out)
                except ValueError as exc:
                    raise AssertionError(f"not JSON from\n{cmd}\n---\n{out[:2000]}") from exc
            else:
                assert out.strip(), f"no output from\n{cmd}"


def test_readme_settings_defaults_are_the_code_defaults() -> None:
    """Every ``STREAMFOLD_X`` (value) the README names is ``Settings``' default for x."""
    named = re.findall(r"`STREAMFOLD_([A-Z_]+)` \((`[^`]+`|\d+)", README.read_text())
    assert named
    for name, value in named:
        field = Settings.model_fields[name.lower()]
        assert str(field.default) == value.strip("`"), f"STREAMFOLD_{name}"
