"""The demo partner of ``make run``: partner "Demo Web Analytics", its system ``weblogs``
with the ``page_view`` structure (``deploy.weblogs.PAGE_VIEW_SCHEMA``), and a read token
for its analytics, made once through the admin API and remembered in a state file; then
waiting until the pipeline stored what was sent."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from deploy.weblogs import EVENT_NAME, PAGE_VIEW_SCHEMA

PARTNER_NAME = "Demo Web Analytics"
PARTNER_EMAIL = "weblogs-demo@example.com"
SYSTEM_NAME = "weblogs"


class WeblogsSetupError(RuntimeError):
    """The partner, system or event structure could not be made or confirmed."""


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201, 202):
        raise WeblogsSetupError(f"{what}: {response.status_code} {response.text[:500]}")
    return response.json()


def _system_named(partner: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in partner.get("systems", []) if s.get("name") == name), None)


def _wait_until(
    client: httpx.Client, partner_id: str, system_id: str, api_key: str, timeout_s: float
) -> None:
    """Until the read model shows the system with the current page_view structure and the
    key authenticates (an empty batch answers 200): before that, events would be refused
    (401) or validated against no structure."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        response = client.get(f"/api/admin/partners/{partner_id}")
        if response.status_code == 200:
            system = next(
                (s for s in response.json()["systems"] if s["system_id"] == system_id), None
            )
            structure = (system or {}).get("structures", {}).get(EVENT_NAME)
            if structure and structure["json_schema"] == PAGE_VIEW_SCHEMA:
                probe = client.post(
                    "/v1/batch",
                    json={"batch": []},
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                if probe.status_code == 200:
                    return
                last = f"probe {probe.status_code} {probe.text[:200]}"
            else:
                last = "structure not visible yet"
        else:
            last = f"partner {response.status_code}"
        time.sleep(0.5)
    raise WeblogsSetupError(f"system {system_id} not usable after {timeout_s:.0f} s: {last}")


def setup_partner(
    base_url: str, admin_token: str, state_path: Path, *, timeout_s: float = 60
) -> dict[str, str]:
    """``{partner_id, system_id, api_key, read_token}`` of the demo partner: its
    ``weblogs`` system's write key, with the ``page_view`` structure defined (required:
    non-conforming events are rejected), and a read token for its analytics.

    Reuses ``state_path`` (that JSON, mode 600) when the partner still exists there (GET
    answers 200) and has that system; otherwise creates the partner (Idempotency-Key
    fixed, so a lost state file finds the same partner again), adds the system or, if one
    of that name exists, rotates its key (a key is shown only once), and writes the file.
    A read token that no longer reads (revoked, or a file from before tokens) is replaced
    by a new one. Waits until the read model and the key are usable.

    Raises ``WeblogsSetupError`` for an unexpected answer or a timeout; ``httpx.HTTPError``
    if the API cannot be reached.
    """
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        saved = _load_state(state_path)
        if saved is not None:
            response = client.get(f"/api/admin/partners/{saved['partner_id']}")
            if response.status_code == 200 and any(
                s["system_id"] == saved["system_id"] and s.get("status") == "active"
                for s in response.json()["systems"]
            ):
                _define_structure(client, saved["partner_id"], saved["system_id"])
                _wait_until(client, saved["partner_id"], saved["system_id"], saved["api_key"],
                            timeout_s)  # fmt: skip
                if not _reads(client, saved.get("read_token")):
                    saved["read_token"] = _issue_read_token(client, saved["partner_id"])
                    _save_state(state_path, saved)
                return saved
        partner_id = _check(
            client.post(
                "/api/admin/partners",
                json={"name": PARTNER_NAME, "email": PARTNER_EMAIL},
                headers={"Idempotency-Key": "streamfold-weblogs:partner"},
            ),
            "create partner",
        )["id"]
        system_id, api_key = _system_key(client, partner_id, timeout_s)
        state = {"partner_id": partner_id, "system_id": system_id, "api_key": api_key}
        _save_state(state_path, state)
        _define_structure(client, partner_id, system_id)
        _wait_until(client, partner_id, system_id, api_key, timeout_s)
        state["read_token"] = _issue_read_token(client, partner_id)
        _save_state(state_path, state)
        return state


def _reads(client: httpx.Client, read_token: str | None) -> bool:
    """Whether ``read_token`` reads analytics now (the demo's file may hold a revoked one)."""
    if not read_token:
        return False
    response = client.get("/v1/analytics/bounds", headers={"Authorization": f"Bearer {read_token}"})
    return response.status_code == 200


def _issue_read_token(client: httpx.Client, partner_id: str) -> str:
    """A new read token of the partner; usable once the answer is in (the route waits for
    the read model)."""
    body = _check(
        client.post(f"/api/admin/partners/{partner_id}/read-tokens", json={"name": "make run"}),
        "issue read token",
    )
    if "token" not in body:
        raise WeblogsSetupError(f"issue read token: no token in the answer {body}")
    return body["token"]


def _partner_state(client: httpx.Client, partner_id: str, timeout_s: float) -> dict[str, Any]:
    # The read model trails the command result by a moment (projection to Redis).
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/api/admin/partners/{partner_id}")
        if response.status_code == 200:
            return response.json()
        if time.monotonic() > deadline:
            raise WeblogsSetupError(f"partner {partner_id}: {response.status_code}")
        time.sleep(0.5)


def _system_key(client: httpx.Client, partner_id: str, timeout_s: float) -> tuple[str, str]:
    existing = _system_named(_partner_state(client, partner_id, timeout_s), SYSTEM_NAME)
    if existing is None:
        response = client.post(f"/api/admin/partners/{partner_id}/systems",
                               json={"name": SYSTEM_NAME})  # fmt: skip
        body = _check(response, "add system")
        if "api_key" in body:
            return body["system_id"], body["api_key"]
        # 202 pending: the system will exist but its key was not shown; rotate below.
        deadline = time.monotonic() + timeout_s
        while existing is None and time.monotonic() < deadline:
            time.sleep(0.5)
            existing = _system_named(_partner_state(client, partner_id, timeout_s), SYSTEM_NAME)
        if existing is None:
            raise WeblogsSetupError(f"system {SYSTEM_NAME!r} did not appear")
    system_id = existing["system_id"]
    if existing.get("status") != "active":
        _check(client.post(f"/api/admin/partners/{partner_id}/systems/{system_id}/reactivate"),
               "reactivate system")  # fmt: skip
    body = _check(
        client.post(f"/api/admin/partners/{partner_id}/systems/{system_id}/rotate-key"),
        "rotate key",
    )
    if "api_key" not in body:
        raise WeblogsSetupError(f"rotate key of {system_id}: no key in the answer {body}")
    return system_id, body["api_key"]


def _define_structure(client: httpx.Client, partner_id: str, system_id: str) -> None:
    # Idempotent: the same schema and flag again records nothing new.
    _check(
        client.put(
            f"/api/admin/partners/{partner_id}/systems/{system_id}/event-structures/{EVENT_NAME}",
            json={"json_schema": PAGE_VIEW_SCHEMA, "required": True},
        ),
        "define page_view structure",
    )


def _load_state(path: Path) -> dict[str, str] | None:
    try:
        saved = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or not all(
        isinstance(saved.get(k), str) for k in ("partner_id", "system_id", "api_key")
    ):
        return None
    return saved


def _save_state(path: Path, state: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 600 before the secrets are written: they are live credentials.
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2) + b"\n")


# ----------------------------------------------------------------- waiting


def wait_for_pipeline(
    base_url: str,
    admin_token: str,
    partner_id: str,
    system_id: str,
    expected: int,
    *,
    timeout_s: float = 120,
) -> tuple[int, int, bool]:
    """Poll until the system's stored events plus its validation rejections reach
    ``expected`` (ingestion -> validation -> ClickHouse is asynchronous).

    Returns (events in ``tracking_events``, rejections, whether ``expected`` was reached
    within ``timeout_s`` seconds). Raises ``httpx.HTTPError`` if the API cannot be reached.
    """
    headers = {"Authorization": f"Bearer {admin_token}"}
    deadline = time.monotonic() + timeout_s
    events = rejected = 0
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        while True:
            stats = client.get("/v1/analytics/stats", params={"system": system_id})
            if stats.status_code == 200:
                events = int(stats.json()["totals"]["events"])
            rejections = client.get(
                f"/api/admin/partners/{partner_id}/systems/{system_id}/rejected-events",
                params={"limit": 1},
            )
            if rejections.status_code == 200:
                rejected = int(rejections.json()["total"])
            # >=: a rerun after the dedup window adds rows again; never wait forever on it.
            if events + rejected >= expected:
                return events, rejected, True
            if time.monotonic() > deadline:
                return events, rejected, False
            time.sleep(1.0)
