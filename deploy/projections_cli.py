"""``streamfold projections``: list, rebuild, promote and drop read-model versions.

Everything goes through the API's admin routes (``api/routes/projections.py``) with the
admin's token, as ``streamfold sql`` does: the runner in the sinks role does the work, and
these commands wait on the listing for it to show, with a timeout and a clear error.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)  # fmt: skip
from rich.table import Table

from deploy.admin_login import admin_token, fail
from pipeline.common.settings import Settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="List, rebuild, promote and drop the versions of read models (projections).",
)  # fmt: skip
console = Console(stderr=True)
POLL_S = 0.5
TAKEN_WITHIN_S = 60.0
"""How long a request may wait for the runner to show it (it reads ``projections.control``
within a second when running)."""


def _client() -> httpx.Client:
    settings = Settings()
    return httpx.Client(
        base_url=settings.api_url,
        headers={"Authorization": f"Bearer {admin_token(settings)}"},
        timeout=30,
    )


def _fail(message: str) -> typer.Exit:
    return typer.Exit(fail(message))


def _answer(response: httpx.Response) -> Any:
    """The JSON body of a 2xx; exit 1 with the problem's detail otherwise."""
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text[:500]
    raise _fail(f"{response.status_code}: {detail}")


def _versions(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    return _answer(client.get(f"/api/admin/projections/{name}"))["versions"]


def _version(client: httpx.Client, name: str, number: int) -> dict[str, Any] | None:
    return next((v for v in _versions(client, name) if v["version"] == number), None)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every projection version: state, topics, lag, events/s, last error."""
    with _client() as client:
        rows = _answer(client.get("/api/admin/projections"))["projections"]
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("name", "version", "state", "store", "topics", "lag", "events/s",
                  "dead-lettered", "last error")  # fmt: skip
    for r in rows:
        rate = r["events_per_s"]
        table.add_row(
            r["name"], str(r["version"]), r["state"], r["store"] or "not installed",
            ", ".join(r["topics"]), "-" if r["lag"] is None else f"{r['lag']:,}",
            "-" if rate is None else f"{rate:,.0f}",
            "-" if r["dead_lettered"] is None else str(r["dead_lettered"]),
            r["last_error"] or "",
        )  # fmt: skip
    Console().print(table)


@app.command()
def rebuild(
    name: Annotated[str, typer.Argument(help="The projection (see `list`).")],
    start: Annotated[
        str,
        typer.Option("--from", help='earliest, an ISO-8601 time, or {"topic": {"0": offset}}.'),
    ] = "earliest",
    wait: Annotated[bool, typer.Option(help="Show progress until caught up.")] = True,
    timeout_s: Annotated[float, typer.Option(help="Give up watching after this long.")] = 3600,
) -> None:
    """Build the next version of NAME from history beside the live one.

    Watching can be stopped (Ctrl-C) at any time: the rebuild goes on in the runner, and
    a crash resumes it from its checkpoint; run this again to watch it. Then `promote`.
    """
    with _client() as client:
        answer = _answer(client.post(f"/api/admin/projections/{name}/rebuild",
                                     json={"from": start}))  # fmt: skip
        number = answer["version"]
        typer.echo(f"{name}: version {number} building from {start}")
        if wait:
            _watch(client, name, number, timeout_s)


def _watch(client: httpx.Client, name: str, number: int, timeout_s: float) -> None:
    """A progress bar of version ``number``'s applied records until it has applied the
    history its topics held when watching began and is at most the promotion's lag
    threshold behind (on a busy topic the lag is never 0; on a small one the threshold
    alone would call a version that applied nothing "caught up")."""
    threshold = Settings().projection_promote_max_lag
    history: int | None = None
    deadline = time.monotonic() + timeout_s
    columns = (TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} events/s"), TimeRemainingColumn())  # fmt: skip
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"{name} v{number}", total=None, rate="-")
            taken_by = time.monotonic() + TAKEN_WITHIN_S
            while True:
                version = _version(client, name, number)
                if version is None:
                    if time.monotonic() > taken_by:
                        raise _fail(f"the runner has not started version {number} within "
                                    f"{TAKEN_WITHIN_S:.0f} s; is the sinks role running? "
                                    "(`streamfold status`)")  # fmt: skip
                    time.sleep(POLL_S)
                    continue
                if version["state"] != "building":
                    break
                parts = version["partitions"]
                total = sum(p["end"] for p in parts)
                done = total - (version["lag"] or 0)
                history = total if history is None and parts else history
                rate = version["events_per_s"]
                progress.update(task, total=max(total, 1), completed=done,
                                rate="-" if rate is None else f"{rate:,.0f}")  # fmt: skip
                lag = version["lag"]
                if history is not None and done >= history and lag is not None and lag <= threshold:
                    break
                if time.monotonic() > deadline:
                    raise _fail(f"not caught up within {timeout_s:.0f} s; it goes on building")
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        console.print(f"stopped watching; version {number} goes on building in the runner")
        raise typer.Exit(130) from None
    typer.echo(f"{name} v{number}: caught up; `streamfold projections promote {name}`")


@app.command()
def promote(
    name: Annotated[str, typer.Argument()],
    max_lag: Annotated[int | None, typer.Option(min=0, help="Default: the setting.")] = None,
    timeout_s: Annotated[float, typer.Option()] = 120,
) -> None:
    """Make the building version of NAME live (an atomic table exchange) and retire the
    live one; waits until the runner has done it."""
    with _client() as client:
        body = {} if max_lag is None else {"max_lag": max_lag}
        number = _answer(client.post(f"/api/admin/projections/{name}/promote", json=body))[
            "version"
        ]
        before = _version(client, name, number)
        error_before = (before or {}).get("last_error", "")
        deadline = time.monotonic() + timeout_s
        while True:
            version = _version(client, name, number)
            if version is not None and version["state"] == "live":
                typer.echo(f"{name}: version {number} is live")
                return
            if version is not None and version["last_error"] not in ("", error_before):
                raise _fail(f"the runner refused: {version['last_error']}")
            if time.monotonic() > deadline:
                raise _fail(f"version {number} not live within {timeout_s:.0f} s; is the sinks"
                            " role running? (`streamfold status`)")  # fmt: skip
            time.sleep(POLL_S)


@app.command()
def drop(
    name: Annotated[str, typer.Argument()],
    version: Annotated[int, typer.Argument(help="A retired (or building) version.")],
    timeout_s: Annotated[float, typer.Option()] = 60,
) -> None:
    """Remove a retired version of NAME and its tables (or cancel a building one)."""
    with _client() as client:
        _answer(client.delete(f"/api/admin/projections/{name}/versions/{version}"))
        deadline = time.monotonic() + timeout_s
        while _version(client, name, version) is not None:
            if time.monotonic() > deadline:
                raise _fail(f"version {version} still there after {timeout_s:.0f} s")
            time.sleep(POLL_S)
    typer.echo(f"{name}: version {version} dropped")


def _set_paused(name: str, paused: bool, timeout_s: float) -> None:
    action = "pause" if paused else "resume"
    with _client() as client:
        number = _answer(client.post(f"/api/admin/projections/{name}/{action}"))["version"]
        deadline = time.monotonic() + timeout_s
        while (found := _version(client, name, number)) is None or found["paused"] != paused:
            if time.monotonic() > deadline:
                raise _fail(f"version {number} not {action}d within {timeout_s:.0f} s; is the "
                            "sinks role running? (`streamfold status`)")  # fmt: skip
            time.sleep(POLL_S)
    typer.echo(f"{name}: version {number} {'paused' if paused else 'resumed'}")


@app.command()
def pause(
    name: Annotated[str, typer.Argument()], timeout_s: Annotated[float, typer.Option()] = 60
) -> None:
    """Stop applying events to NAME's live version; its lag grows, nothing is lost."""
    _set_paused(name, True, timeout_s)


@app.command()
def resume(
    name: Annotated[str, typer.Argument()], timeout_s: Annotated[float, typer.Option()] = 60
) -> None:
    """Apply NAME's events again from where the pause left it."""
    _set_paused(name, False, timeout_s)
