"""Loading identity records through the public API (``streamfold load-identity``): the
first ``count`` people of the us-500 sample as prospects, a few second records of them
merged back, a few converted to students (enrolled in a course) and instructors.

Idempotent: Idempotency-Keys derive from the e-mails, so a second run creates nothing
new (merges and conversions answer with the first run's outcome).
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from deploy.api_calls import ApiCalls
from pipeline.common.settings import Settings

MERGES = 3
STUDENTS = 4
INSTRUCTORS = 2
COURSES = ("CS-101", "MATH-2010", "ART-110")


class IdentityLoader(ApiCalls):
    def __init__(self, settings: Settings, token: str, concurrency: int) -> None:
        super().__init__(settings.api_url, concurrency)
        self.headers = {"Authorization": f"Bearer {token}"}

    async def post(self, what: str, url: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        headers = {**self.headers, "Idempotency-Key": key}
        response = await self._call(what, "POST", url, json=body, headers=headers)
        return response.json() if response.status_code < 300 else {}


def _prospect(row: dict[str, str], source: str) -> dict[str, Any]:
    return {
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "phone": row["phone1"] or None,
        "source": source,
        "notes": f"works at {row['company_name']}, {row['city']} {row['state']}",
    }


def _second_record(row: dict[str, str]) -> dict[str, Any]:
    """The same person as entered again at a fair: a work address, the second phone."""
    local, _, _domain = row["email"].partition("@")
    return {
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": f"{local}@{row['web'].split('//')[-1].removeprefix('www.')}",
        "phone": row["phone2"] or None,
        "source": "education fair",
        "notes": "signed up twice",
    }


async def _load(settings: Settings, token: str, rows: list[dict[str, str]], concurrency: int):
    loader = IdentityLoader(settings, token, concurrency)
    async with loader.client:
        with Progress(transient=False) as progress:
            ids: dict[str, str] = {}

            async def create(row: dict[str, str]) -> None:
                body = _prospect(row, "us-500 sample")
                made = await loader.post(
                    "create", "/api/prospects", body, f"prospect:{row['email']}"
                )
                ids[row["email"]] = made.get("id", "")

            await loader._each(progress, "prospects", [create(r) for r in rows])
            twins = rows[:MERGES]

            async def merge(row: dict[str, str]) -> None:
                body = _second_record(row)
                key = f"prospect:{body['email']}"
                twin = (await loader.post("create twin", "/api/prospects", body, key)).get("id")
                if twin and ids[row["email"]]:
                    into = {"into": ids[row["email"]]}
                    await loader.post(
                        "merge", f"/api/prospects/{twin}/merge", into, f"merge:{twin}"
                    )

            await loader._each(progress, "merging twins", [merge(r) for r in twins])
            people = rows[MERGES : MERGES + STUDENTS + INSTRUCTORS]

            async def convert(n: int, row: dict[str, str]) -> None:
                pid = ids[row["email"]]
                role = "student" if n < STUDENTS else "instructor"
                made = await loader.post(
                    "convert",
                    f"/api/prospects/{pid}/convert",
                    {"role": role},
                    f"convert:{pid}:{role}",
                )
                if role == "student" and made.get("id"):
                    course = {"course": COURSES[n % len(COURSES)]}
                    await loader.post(
                        "enroll", f"/api/students/{made['id']}/enrollments", course, f"enroll:{pid}"
                    )

            await loader._each(
                progress, "converting", [convert(n, r) for n, r in enumerate(people)]
            )
        page = await loader.client.get(
            "/api/prospects", params={"page_size": 5, "search": rows[0]["last_name"]},
            headers=loader.headers,
        )  # fmt: skip
    return loader.outcomes, page.json().get("items", [])


def load_identity(
    settings: Settings, token: str, csv_path: Path, *, count: int, concurrency: int
) -> int:
    """Load, print the outcomes, a merged prospect and the page's URL. Returns the number
    of refused requests."""
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))[:count]
    outcomes, found = asyncio.run(_load(settings, token, rows, concurrency))
    out = Console()
    out.print(
        f"identity: {len(rows)} prospects, {MERGES} merged twins, "
        f"{STUDENTS} students, {INSTRUCTORS} instructors"
    )
    for outcome, n in sorted(outcomes.items()):
        out.print(f"  {n:6d}  {outcome}")
    table = Table(title=f"search {rows[0]['last_name']!r}: the twin resolves to its survivor")
    for column in ("name", "email", "other emails", "phone", "status"):
        table.add_column(column)
    for p in found:
        name = f"{p['first_name']} {p['last_name']}"
        table.add_row(name, p["email"], ", ".join(p["other_emails"]), p["phone"] or "", p["status"])
    out.print(table)
    out.print(f"Identity page (admin or teacher; live updates): {settings.api_url}/identity")
    return sum(n for k, n in outcomes.items() if not k.endswith(": ok"))
