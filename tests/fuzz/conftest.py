"""Fixtures for the schemathesis fuzz (``tests/fuzz/test_openapi.py``, marker ``fuzz``).

The fuzz runs on the session's stack (``server``, ``admin`` from ``tests/conftest.py``) and
changes its state freely: it creates users, admins, partners and systems, deactivates
them, rotates keys and empties the login throttle of 127.0.0.1. So its tests are moved to
the end of the session (``pytest_collection_modifyitems``): nothing else runs on what it
leaves behind.

Budget (environment):
- ``STREAMFOLD_FUZZ_EXAMPLES``: schemathesis ``--max-examples``, generated cases per
  operation in the fuzzing phase, and the stateful phase's scenario budget (default 5,
  the CI budget; ``make fuzz`` sets 100);
- ``STREAMFOLD_FUZZ_PHASES``: default ``examples,fuzzing,stateful``; ``make fuzz`` adds
  ``coverage`` (deterministic boundary and invalid-value cases, ~1,100 per auth, whatever
  the budget);
- ``STREAMFOLD_FUZZ_REPORT_DIR``: keep each run's spec, config, schemathesis output and
  NDJSON events there (``make fuzz``: ``.local/fuzz``).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.support import ServeProcess, admin_token, new_user, wait_for

CI_EXAMPLES = 5
CI_PHASES = "examples,fuzzing,stateful"


def fuzz_examples() -> int:
    return int(os.environ.get("STREAMFOLD_FUZZ_EXAMPLES") or CI_EXAMPLES)


def fuzz_phases() -> list[str]:
    return (os.environ.get("STREAMFOLD_FUZZ_PHASES") or CI_PHASES).replace(" ", "").split(",")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The fuzz mutates the shared stack: run it after every other test of the session.
    items.sort(key=lambda item: item.get_closest_marker("fuzz") is not None)


@dataclass(frozen=True)
class FuzzPrincipals:
    """The credentials the fuzz sends. ``tests/fuzz/hooks.py`` keeps state-changing
    requests off these ids, so the fuzz cannot lock itself out."""

    admin_token: str
    admin_user_id: str
    partner_id: str
    system_id: str
    api_key: str

    def protected(self) -> list[str]:
        return [self.admin_user_id, self.partner_id, self.system_id]


@dataclass(frozen=True)
class FuzzTargets:
    """Existing ids the fuzz may act on (and does: it deactivates, deletes, rotates), so
    routes with ids in their path get past 404 to their real logic."""

    partner_ids: list[str]
    system_ids: list[str]
    user_ids: list[str]
    command_ids: list[str]


def _subject(token: str) -> str:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _partner_with_system(admin: httpx.Client, name: str) -> tuple[str, dict]:
    body = {"name": f"{name}-{uuid.uuid4().hex[:6]}", "email": "fuzz@example.org"}
    partner = admin.post("/api/admin/partners", json=body)
    assert partner.status_code == 201, partner.text
    pid = partner.json()["id"]
    system = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": name})
    assert system.status_code == 201, system.text
    return pid, system.json()


@pytest.fixture(scope="session")
def fuzz_principals(server: ServeProcess, admin: httpx.Client) -> FuzzPrincipals:
    token = admin_token(server)
    pid, system = _partner_with_system(admin, "fuzz")
    key = system["api_key"]

    def key_works() -> bool:
        answer = httpx.post(
            f"{server.settings.api_url}/v1/batch",
            json={"batch": []},
            headers={"Authorization": f"Bearer {key}"},
        )
        return answer.status_code == 200

    wait_for(key_works, timeout_s=30, what="the fuzz partner's key")
    return FuzzPrincipals(
        admin_token=token,
        admin_user_id=_subject(token),
        partner_id=pid,
        system_id=system["system_id"],
        api_key=key,
    )


@pytest.fixture(scope="session")
def fuzz_targets(admin: httpx.Client, fuzz_principals: FuzzPrincipals) -> FuzzTargets:
    commands: list[str] = []
    pid, system = _partner_with_system(admin, "target")
    second = admin.post(f"/api/admin/partners/{pid}/systems", json={"name": "second"})
    assert second.status_code == 201, second.text
    structure = admin.put(
        f"/api/admin/partners/{pid}/systems/{system['system_id']}/event-structures/page_view",
        json={"json_schema": {"type": "object", "required": ["path"]}, "required": True},
    )
    assert structure.status_code == 200, structure.text
    users = []
    for i, role in enumerate(["student", "teacher", "admin"]):
        body = new_user("fuzz", first_name="Fuzz", last_name=f"Target{i}", role=role)
        created = admin.post("/api/admin/users", json=body)
        assert created.status_code == 201, created.text
        users.append(created.json()["id"])
        commands.append(created.json()["command_id"])
    return FuzzTargets(
        partner_ids=[pid],
        system_ids=[system["system_id"], second.json()["system_id"]],
        user_ids=users,
        command_ids=commands,
    )
