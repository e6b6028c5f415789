"""Loading real data through the public API (never into a store directly).

People CSV (``first_name,last_name,...,phone1,phone2,email,web``, the us-500 sample):
one ``POST /api/admin/users`` per row. The Idempotency-Key is derived from the row's
email, so loading the same file again creates nothing new.
"""

from __future__ import annotations

import asyncio
import csv
import re
import secrets
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

from pipeline.common.settings import Settings

_NOT_USERNAME = re.compile(r"[^a-z0-9_]+")


def username_for(email: str) -> str:
    """The email's local part, reduced to 3-30 chars of ``[a-z0-9_]``."""
    local = _NOT_USERNAME.sub("_", email.split("@", 1)[0].lower()).strip("_")
    return (local or "user").ljust(3, "0")[:30]


def load_people(settings: Settings, token: str, csv_path: Path, *, concurrency: int) -> Counter:
    """Create every row; print a progress bar and a summary. Returns outcome -> count,
    where an outcome is ``accepted`` or ``<status> <problem type>``."""
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    outcomes = asyncio.run(_load(settings, token, rows, concurrency))
    console = Console()
    accepted = outcomes.get("accepted", 0)
    console.print(f"users: {accepted} accepted, {sum(outcomes.values()) - accepted} rejected")
    for outcome, count in outcomes.most_common():
        if outcome != "accepted":
            console.print(f"  {count:4d}  {outcome}")
    return outcomes


async def _load(settings: Settings, token: str, rows: list[dict], concurrency: int) -> Counter:
    outcomes: Counter = Counter()
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=settings.api_url, headers=headers, timeout=60) as client:
        with Progress(transient=False) as progress:
            task = progress.add_task("creating users", total=len(rows))

            async def one(row: dict) -> None:
                body = {
                    "username": username_for(row["email"]),
                    "email": row["email"],
                    "first_name": row["first_name"],
                    "last_name": row["last_name"],
                    "phone": row["phone1"] or None,
                    "role": "student",
                    "password": secrets.token_urlsafe(12),
                }
                async with gate:
                    response = await client.post(
                        "/api/admin/users",
                        json=body,
                        headers={"Idempotency-Key": f"people-csv:{row['email'].lower()}"},
                    )
                if response.status_code in (200, 201, 202):
                    outcomes["accepted"] += 1
                else:
                    problem = response.json()
                    detail = problem.get("type", "")
                    if problem.get("errors"):
                        detail += " " + ",".join(str(e["loc"][-1]) for e in problem["errors"])
                    outcomes[f"{response.status_code} {detail}"] += 1
                progress.advance(task)

            await asyncio.gather(*(one(r) for r in rows))
    return outcomes
