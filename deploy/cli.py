"""The ``streamfold`` command line (typer).

Processes: ``serve`` (every role as a supervised child process), ``worker --role`` and
``api`` (one role each: the separate deployables). Local stack: ``up``,
``down``, ``status``. Operators and analysts: ``create-admin``, ``load-users``,
``load-weblogs``, ``load-social``, ``sql``. Platform engineers: ``projections`` (list,
rebuild, promote, drop).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlparse

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

from deploy import localstack, processes
from deploy.admin_login import admin_password, admin_password_path, admin_token
from deploy.admin_login import fail as _fail
from deploy.exceptions import InstallSecretError, LocalStackError
from deploy.projections_cli import app as projections_app
from deploy.roles import Role
from deploy.secrets import claim_keys, with_jwt_secret
from pipeline.common.settings import Settings

if TYPE_CHECKING:
    from pipeline.domain.handling import CommandResult
    from pipeline.write.command_bus import CommandBus

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(projections_app, name="projections")
console = Console(stderr=True)
_ADMIN_NAMESPACE = uuid.UUID("3c2f8b1e-7a4d-5c6e-9f10-8b7a6d5c4e3f")


def _settings() -> Settings:
    return Settings()


def _pidfile(settings: Settings, name: str) -> Path:
    return settings.home.resolve() / "pids" / f"{name}.json"


# ----------------------------------------------------------------- processes


@app.command()
def serve() -> None:
    """Every role as a supervised child process (``deploy/supervisor.py``); with the
    embedded ClickHouse the sinks process owns the engine."""
    from deploy.runtime import configure_logging
    from deploy.supervisor import Supervisor

    configure_logging()
    settings = _settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    with_jwt_secret(settings, create=False)  # fail here, once, not in every API child
    code = asyncio.run(Supervisor(settings, _children_file(settings)).run())
    raise typer.Exit(code)


@app.command()
def worker(
    role: Annotated[Role, typer.Option(help="What this process runs (README, 'Processes').")],
) -> None:
    """One pipeline role: sinks (read models, tracking sinks; owns a chdb engine),
    commands (Faust command agents) or validation. Scale commands and validation by
    count; one sinks process."""
    from deploy.runtime import configure_logging

    if role is Role.API:
        raise typer.BadParameter("the API is `streamfold api`")
    configure_logging()
    _run_role(_settings(), role)


@app.command()
def api() -> None:
    """The HTTP API; several on one port share it (SO_REUSEPORT). With ``chdb://`` it
    queries through the sinks process's socket."""
    from deploy.runtime import configure_logging

    configure_logging()
    _run_role(_settings(), Role.API)


def _run_role(settings: Settings, role: Role) -> None:
    from deploy.runtime import run_role

    if settings.event_loop == "uvloop" and role is not Role.COMMANDS:
        import uvloop

        # Faust keeps asyncio's loop: its worker is tested on nothing else here
        uvloop.run(run_role(settings, role))
    else:
        asyncio.run(run_role(settings, role))


def _children_file(settings: Settings) -> Path:
    return settings.home.resolve() / "run" / "children.json"


# ----------------------------------------------------------------- local stack


def _port(address: str, default: int) -> int:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    return parsed.port or default


@app.command()
def up(
    timeout_s: Annotated[float, typer.Option(help="How long to wait for /readyz.")] = 180,
) -> None:
    """Start Kafka, Redis and ``streamfold serve`` in the background; wait for /readyz."""
    settings = _settings()
    home = settings.home.resolve()
    with_jwt_secret(settings, create=True)  # the local stack's own, made once in <home>
    stack = localstack.LocalStack.start(
        home,
        kafka_port=_port(settings.kafka_bootstrap, 39092),
        redis_port=_port(settings.redis_url, 36379),
    )
    console.print(f"kafka {stack.kafka_bootstrap}   redis {stack.redis_url}")
    pidfile = _pidfile(settings, "serve")
    running = processes.read_pidfile(pidfile)
    if running is None or not processes.pid_alive(running.pid):
        log_path = home / "logs" / "serve.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "deploy.cli", "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "STREAMFOLD_HOME": str(home)},
            )
        processes.write_pidfile(
            pidfile,
            processes.ServiceProcess(
                name="serve", pid=proc.pid, address=settings.api_url, log_path=log_path
            ),
        )
        console.print(f"serve started (pid {proc.pid}), log {log_path}")
    _wait_ready(settings, timeout_s, pidfile)
    console.print(f"[green]ready[/green]: {settings.api_url}/readyz")


def _wait_ready(settings: Settings, timeout_s: float, pidfile: Path) -> None:
    """Until /readyz answers 200; fails at once, with the log's tail, if serve exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        proc = processes.read_pidfile(pidfile)
        if proc is not None and not processes.pid_alive(proc.pid):
            tail = proc.log_path.read_text(errors="replace").splitlines()[-30:]
            raise typer.Exit(_fail("serve exited while starting:\n" + "\n".join(tail)))
        try:
            response = httpx.get(f"{settings.api_url}/readyz", timeout=10)
            if response.status_code == 200:
                return
            last = response.text[:500]
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise typer.Exit(_fail(f"not ready after {timeout_s:.0f} s: {last}"))


@app.command()
def down() -> None:
    """Stop what ``up`` started (by pid: serve, then Kafka and Redis). Nothing else."""
    from deploy.supervisor import STOP_TIMEOUT_S

    settings = _settings()
    # serve stops its roles one after another, each given STOP_TIMEOUT_S
    serve_s = 4 * STOP_TIMEOUT_S + 10
    for name in ("serve", "kafka", "redis"):
        pidfile = _pidfile(settings, name)
        proc = processes.read_pidfile(pidfile)
        if proc is None:
            continue
        was_running = processes.stop_process(proc.pid, timeout_s=serve_s if name == "serve" else 30)
        pidfile.unlink(missing_ok=True)
        console.print(f"{name}: {'stopped' if was_running else 'was not running'} (pid {proc.pid})")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Running services and the addresses a client needs."""
    settings = _settings()
    services = []
    for name in ("kafka", "redis", "serve"):
        proc = processes.read_pidfile(_pidfile(settings, name))
        alive = proc is not None and processes.pid_alive(proc.pid)
        services.append(
            {
                "name": name,
                "running": alive,
                "pid": proc.pid if proc else None,
                "address": proc.address if proc else None,
                "log": str(proc.log_path) if proc else None,
            }
        )
    from deploy.supervisor import read_status

    for child in read_status(_children_file(settings)):
        pid = child.get("pid")
        services.append(
            {
                "name": f"serve/{child['role']}-{child['index']}",
                "running": isinstance(pid, int) and processes.pid_alive(pid),
                "pid": pid,
                "address": settings.api_url if child["role"] == "api" else None,
                "log": None,
                "restarts": child.get("restarts", 0),
            }
        )
    kafka_up = any(s["name"] == "kafka" and s["running"] for s in services)
    info = {
        "kafka_bootstrap": settings.kafka_bootstrap,
        "redis_url": settings.redis_url,
        "clickhouse_dsn": settings.clickhouse_dsn,
        "api_url": settings.api_url,
        "edge": _edge_path(settings),
        "services": services,
        "consumer_groups": _group_lag(settings) if kafka_up else [],
    }
    if as_json:
        typer.echo(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("service", "running", "pid", "address", "log")
    for s in services:
        table.add_row(s["name"], "yes" if s["running"] else "no", str(s["pid"] or "-"),
                      s["address"] or "-", s["log"] or "-")  # fmt: skip
    Console().print(table)
    if info["consumer_groups"]:
        lags = Table("role", "consumer group", "topics", "lag (records not committed)")
        for g in info["consumer_groups"]:
            lags.add_row(g["role"], g["group"], ", ".join(g["topics"]),
                         "?" if g["lag"] is None else f"{g['lag']:,}")  # fmt: skip
        Console().print(lags)
    for key in ("kafka_bootstrap", "redis_url", "clickhouse_dsn", "api_url", "edge"):
        typer.echo(f"{key}: {info[key]}")


def _edge_path(settings: Settings) -> str:
    """The per-event path the API processes of this install run (``/readyz`` says it per
    process): ``compiled`` or ``python``, and why when the core is not built."""
    import importlib.util

    if settings.edge_core == "python":
        return "python (STREAMFOLD_EDGE_CORE=python)"
    if importlib.util.find_spec("streamfold_edge") is None:
        return "python (the compiled core is not built: make install with cargo)"
    return "compiled"


def _group_lag(settings: Settings) -> list[dict[str, object]]:
    """Every consumer group of the install (``pipeline/projections/groups.py``) with its lag:
    records its committed offsets are behind the topics' ends (None when Kafka does not
    answer).
    The projection versions come from the catalog when the store answers, else v1."""
    from confluent_kafka import KafkaException

    from connectors.kafka import consumer_lag
    from connectors.store import StoreClient
    from deploy.roles.api import open_query_store
    from pipeline.projections import catalog, groups, registry

    async def read_catalog() -> list[catalog.Version]:
        store = open_query_store(settings)
        try:
            return await catalog.versions(store)
        finally:
            if isinstance(store, StoreClient):
                await store.aclose()
            else:
                store.close()

    versions: list[catalog.Version] = []
    try:
        versions = asyncio.run(asyncio.wait_for(read_catalog(), 10))
    except Exception as exc:  # the catalog is a refinement: status still answers
        console.print(f"[yellow]projection catalog not read[/yellow]: {exc!r}"[:300])
    projections = registry.installed(tuple(settings.projection_plugins))
    rows: list[dict[str, object]] = []
    for role, by_group in groups.by_role(settings.app_id, projections, versions).items():
        for group, group_topics in by_group.items():
            try:
                lag: int | None = sum(
                    consumer_lag(settings.kafka_bootstrap, group, group_topics).values()
                )
            except KafkaException:
                lag = None
            rows.append({"role": role, "group": group, "topics": group_topics, "lag": lag})
    return rows


# ----------------------------------------------------------------- operators


@app.command("create-admin")
def create_admin(
    email: Annotated[str | None, typer.Option(help="Default: STREAMFOLD_ADMIN_EMAIL.")] = None,
    username: Annotated[str, typer.Option()] = "admin",
    wait_s: Annotated[
        float, typer.Option(help="Wait until the admin can log in (0: do not wait).")
    ] = 60,
) -> None:
    """Create the first admin by a CreateUser command on Kafka (idempotent per email). If
    that account exists but was demoted or deactivated, give it the admin role and the
    active status back (commands as ``system``) and say so: the operator's way back when
    no admin is left. Then wait until the admin can log in and use the admin routes."""
    from deploy.runtime import configure_logging

    configure_logging("WARNING")
    settings = _settings()
    email = email or settings.admin_email
    password = admin_password(settings, create=True)
    user_id, restored = asyncio.run(_create_admin(settings, email, username, password))
    console.print(f"admin {email} is user {user_id}")
    for change in restored:
        console.print(f"restored: {change}")
    if settings.admin_password is None:
        # soft_wrap: a path cut at the terminal's width cannot be copied
        path = admin_password_path(settings)
        console.print(f"password in {path} (mode 0600; not shown)", soft_wrap=True)
    if wait_s > 0:
        _until_admin_works(settings, email, password, user_id, wait_s)
        console.print("admin login works")


def _until_admin_works(
    settings: Settings, login: str, password: str, user_id: str, timeout_s: float
) -> None:
    """Read-your-writes for the admin: return once ``POST /api/auth/token`` accepts the
    admin and its token reads ``GET /api/admin/users/{user_id}``, i.e. once the read
    models show the admin as an active admin (a tool run right after ``create-admin``
    logs in and manages users). A 429 from the login throttle is waited out
    (``Retry-After``). Exits with an error after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        pause = 0.2
        try:
            response = httpx.post(
                f"{settings.api_url}/api/auth/token",
                data={"username": login, "password": password},
                timeout=10,
            )
            if response.status_code == 200:
                token = response.json()["access_token"]
                response = httpx.get(
                    f"{settings.api_url}/api/admin/users/{user_id}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                if response.status_code == 200:
                    return
            elif response.status_code == 429:
                pause = float(response.headers.get("Retry-After", "1"))
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    raise typer.Exit(
        _fail(
            f"the admin exists, but login has not worked for {timeout_s:.0f} s (last answer: "
            f"{last}). Either the read models are behind (see the lag in "
            f"{settings.api_url}/readyz) or the admin was created earlier with another "
            "password than the one configured now."
        )
    )


async def _create_admin(
    settings: Settings, email: str, username: str, password: str
) -> tuple[str, list[str]]:
    """CreateUser for the admin, then :func:`_restore_admin` on that user. Returns the
    admin's user id and what was restored. Exits with an error when a command gets no
    result or is refused."""
    from api.last_admin import mark_grant
    from connectors.redis import open_redis
    from pipeline.domain.results import RejectionReason
    from pipeline.domain.users.commands import CreateUser
    from pipeline.domain.values import Email, hash_password
    from pipeline.write.command_bus import CommandBus
    from pipeline.write.routing import new_aggregate_id

    # The command id is derived from the email, so running this again is a duplicate of
    # the first run and answers with the same result instead of a conflict.
    command_id = str(uuid.uuid5(_ADMIN_NAMESPACE, Email.parse(email).value))
    command = CreateUser(
        command_id=command_id,
        aggregate_id=new_aggregate_id(command_id),
        issued_at=datetime.now(UTC),
        correlation_id=command_id,
        username=username,
        email=email,
        first_name="Admin",
        last_name="User",
        phone=None,
        role="admin",
        password_hash=hash_password(password).value,
    )
    bus = CommandBus(
        settings.kafka_bootstrap,
        client_id="streamfold-cli",
        timeout_s=60,
        claim_keys=claim_keys(settings),
    )
    # The API's last-admin check counts a user granted the role in the last few minutes
    # as a possible admin only if the grant is marked (api/last_admin.py).
    redis = open_redis(settings.redis_url)
    try:
        await mark_grant(redis, command.aggregate_id)
    finally:
        await redis.aclose()
    await bus.start()
    try:
        created = _answered(await bus.submit(command))
        # already_exists: same id, but the CreateUser has left the user's idempotency
        # window (its last `recent_commands_per_aggregate` commands, logins included).
        if created.status == "rejected" and created.reason != RejectionReason.ALREADY_EXISTS:
            raise typer.Exit(_fail(f"{created.reason}: {created.message}"))
        return command.aggregate_id, await _restore_admin(bus, command.aggregate_id, email)
    finally:
        await bus.stop()


async def _restore_admin(bus: CommandBus, user_id: str, email: str) -> list[str]:
    """Give the admin back what a deactivation or a demotion took: ReactivateUser, then
    GrantAdmin (keeps the profile), both as ``system`` (no actor) and each a no-op when
    there is nothing to restore. Returns one line per change made. Exits when the account
    is deleted (a soft delete is final, seed 000) or a command is refused otherwise."""
    from pipeline.domain.results import RejectionReason
    from pipeline.domain.users.commands import GrantAdmin, ReactivateUser

    def fields() -> dict[str, object]:
        command_id = str(uuid.uuid4())
        return {
            "command_id": command_id,
            "aggregate_id": user_id,
            "issued_at": datetime.now(UTC),
            "correlation_id": command_id,
        }

    done = []
    reactivated = _answered(await bus.submit(ReactivateUser(**fields())))
    if reactivated.status == "accepted":
        done.append("status active (was inactive)")
    elif reactivated.reason == RejectionReason.DELETED:
        raise typer.Exit(
            _fail(
                f"the admin account {email} (user {user_id}) is deleted; a deletion is final "
                "and keeps the email taken: set STREAMFOLD_ADMIN_EMAIL (and --username) to a "
                "new account and run create-admin again"
            )
        )
    elif reactivated.reason != RejectionReason.INVALID_STATE:  # invalid_state: active
        raise typer.Exit(_fail(f"ReactivateUser: {reactivated.reason}: {reactivated.message}"))
    granted = _answered(await bus.submit(GrantAdmin(**fields())))
    if granted.status == "rejected":
        raise typer.Exit(_fail(f"GrantAdmin: {granted.reason}: {granted.message}"))
    if granted.event_ids:
        done.append("role admin (was demoted)")
    return done


def _answered(result: CommandResult | None) -> CommandResult:
    if result is None:
        raise typer.Exit(_fail("no result within the timeout; is the worker running?"))
    return result


@app.command("load-users")
def load_users(
    csv_path: Annotated[Path, typer.Argument()] = Path("deploy/data/us-500.csv"),
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
) -> None:
    """Create every person of a people CSV through ``POST /api/admin/users``."""
    from deploy.loading import load_people

    settings = _settings()
    load_people(settings, admin_token(settings), csv_path, concurrency=concurrency)


@app.command("load-social")
def load_social(
    users: Annotated[int, typer.Option(min=2, max=3726, help="Best-connected users.")] = 200,
    chirps_per_user: Annotated[int, typer.Option(min=0, max=100)] = 3,
    concurrency: Annotated[int, typer.Option(min=1, max=128)] = 32,
) -> None:
    """Create a real follower network's users (as the admin), create their follows and
    post chirps, each user with their own token; print a sample feed."""
    from deploy.social_load import load_social as load

    settings = _settings()
    refused = load(
        settings, admin_token(settings), users=users, chirps_per_user=chirps_per_user,
        concurrency=concurrency,
    )  # fmt: skip
    if refused:
        raise typer.Exit(_fail(f"{refused} requests were refused (see above)"))


@app.command("load-identity")
def load_identity(
    csv_path: Annotated[Path, typer.Argument()] = Path("deploy/data/us-500.csv"),
    count: Annotated[int, typer.Option(min=10, max=500, help="People to load.")] = 40,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
) -> None:
    """Create prospects from a people CSV through the API, merge a few second records
    of them, convert a few to students and instructors; print the /identity page URL."""
    from deploy.identity_load import load_identity as load

    settings = _settings()
    refused = load(settings, admin_token(settings), csv_path, count=count, concurrency=concurrency)
    if refused:
        raise typer.Exit(_fail(f"{refused} requests were refused (see above)"))


@app.command("load-weblogs")
def load_weblogs(
    nasa: Annotated[Path, typer.Option(help="NASA TSV log.")] = Path(
        "deploy/data/nasa_19950801.tsv"
    ),
    apache: Annotated[Path, typer.Option(help="Apache combined log.")] = Path(
        "deploy/data/apache_logs.log"
    ),
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    wait_s: Annotated[float, typer.Option(help="How long to wait for the pipeline.")] = 120,
) -> None:
    """Send two web server logs as ``page_view`` events of a demo partner system through
    ``POST /v1/batch``; wait until they are queryable and show an example query."""
    from collections import Counter

    from deploy import batch_sender, demo_partner, weblogs

    settings = _settings()
    out = Console()
    token = admin_token(settings)
    state_path = settings.home.resolve() / "weblogs-partner.json"
    try:
        demo = demo_partner.setup_partner(settings.api_url, token, state_path)
    except demo_partner.WeblogsSetupError as exc:
        raise typer.Exit(_fail(str(exc))) from exc
    partner_id, system_id, api_key = demo["partner_id"], demo["system_id"], demo["api_key"]
    out.print(
        f"partner {partner_id}, system {system_id} (write key and read token in {state_path})"
    )
    totals: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    started = time.monotonic()
    for label, events in (
        (f"nasa   {nasa.name}", list(weblogs.parse_nasa(nasa, skipped))),
        (f"apache {apache.name}", list(weblogs.parse_apache(apache, skipped))),
    ):
        totals += asyncio.run(
            batch_sender.send_events(
                settings.api_url, api_key, events, concurrency=concurrency, progress_label=label
            )
        )
    sent_s = time.monotonic() - started
    accepted = totals.get("accepted", 0)
    sent = sum(totals.values())
    out.print(
        f"page views: {accepted} accepted, {sent - accepted} refused, "
        f"{sum(skipped.values())} log lines skipped; {sent / sent_s:,.0f} events/s "
        f"({sent_s:.1f} s)"
    )
    for outcome, count in [*totals.most_common(), *skipped.most_common()]:
        if outcome != "accepted":
            out.print(f"  {count:6d}  {outcome}")
    # what ends up stored or listed as rejected: every event the API answered for one by
    # one (events refused at the edge are listed with validation's refusals)
    answered = sum(n for k, n in totals.items() if not k.startswith(("gave up", "http ")))
    events_n, rejected_n, done = demo_partner.wait_for_pipeline(
        settings.api_url, token, partner_id, system_id, answered, timeout_s=wait_s
    )
    waited_s = time.monotonic() - started - sent_s
    state = "in ClickHouse" if done else f"[yellow]still arriving after {wait_s:.0f} s[/yellow]"
    out.print(
        f"pipeline: {events_n} stored, {rejected_n} rejected ({state}; waited {waited_s:.1f} s)",
        soft_wrap=True,
    )
    query = (
        "SELECT JSONExtractString(properties, 'path') AS path, count() AS views "
        f"FROM tracking_events WHERE system_id = '{system_id}' AND event = 'page_view' "
        "GROUP BY path ORDER BY views DESC LIMIT 10"
    )
    out.print("\nTop 10 paths by views:")
    out.print(f'  streamfold sql "{query}"', soft_wrap=True, highlight=False)
    response = httpx.post(
        f"{settings.api_url}/api/admin/sql",
        json={"sql": query, "max_rows": 10},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    if response.status_code != 200:
        raise typer.Exit(_fail(f"example query: {response.status_code} {response.text[:500]}"))
    body = response.json()
    table = Table(*body["columns"])
    for row in body["rows"]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    out.print(table)
    out.print(
        f"Partner read token (analytics only; the write key only sends): {demo['read_token']}",
        soft_wrap=True, highlight=False,
    )  # fmt: skip
    out.print(f"Dashboard: {settings.api_url}/dashboard (sign in with that token)")
    if any(k.startswith(("gave up", "http ")) for k in totals):
        raise typer.Exit(_fail("some batches were not delivered (see above)"))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One SELECT over the analyst tables.")],
    max_rows: Annotated[int, typer.Option(min=1, max=100_000)] = 1000,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Read-only SQL against the configured ClickHouse, printed as a table.

    One SELECT over the analyst tables, checked by ``connectors/analyst_sql.py`` (README,
    "Analyst SQL"). An embedded (chdb) engine is held by ``serve``, so the query goes
    through its API; with a server DSN it goes straight to the server, as the analyst user
    of ``STREAMFOLD_ANALYST_CLICKHOUSE_DSN`` when set. Exit 1 with the reason when refused.
    """
    settings = _settings()
    if settings.embedded_clickhouse:
        response = httpx.post(
            f"{settings.api_url}/api/admin/sql",
            json={"sql": query, "max_rows": max_rows},
            headers={"Authorization": f"Bearer {admin_token(settings)}"},
            timeout=120,
        )
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = f"{response.status_code} {response.text[:500]}"
            raise typer.Exit(_fail(str(detail)))
        body = response.json()
        columns, rows = body["columns"], body["rows"]
    else:
        from connectors.clickhouse import ClickHouse
        from connectors.exceptions import ConnectorError, ReadOnlyQueryError
        from pipeline.projections import registry

        analyst_dsn = settings.analyst_clickhouse_dsn or None
        clickhouse = ClickHouse.open(
            analyst_dsn or settings.clickhouse_dsn,
            analyst_tables=registry.analyst_tables(settings.projection_plugins),
        )
        try:
            columns, rows = asyncio.run(
                clickhouse.query_readonly(query, max_rows=max_rows, analyst_dsn=analyst_dsn)
            )
        except ReadOnlyQueryError as exc:
            raise typer.Exit(_fail(f"statement not allowed: {exc.reason}")) from exc
        except ConnectorError as exc:  # AnalystQueryError: a short message of its own
            raise typer.Exit(_fail(str(exc))) from exc
        finally:
            clickhouse.close()
    if as_json:
        typer.echo(orjson.dumps({"columns": columns, "rows": rows}, default=str).decode())
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    Console().print(table)


def main() -> None:
    try:
        app()
    except (LocalStackError, InstallSecretError) as exc:
        sys.exit(_fail(str(exc)))


if __name__ == "__main__":
    main()
