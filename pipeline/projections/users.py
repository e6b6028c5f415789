"""The ``users`` and ``accounts`` read models: the User fold, one row per aggregate version.

Both tables are ReplacingMergeTree on ``version``: a row is the whole state of a user
at that aggregate version, and ``FINAL`` keeps the highest. The projection folds each
batch with the domain's own ``evolve`` on top of the stored state and skips every event
at or below the stored version, so duplicates and full replays leave the tables as they
were (README.md, "How it fits together": Projections; the rule is ``folding.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipeline.domain.users import USER_SPEC, from_data
from pipeline.domain.users.aggregate import evolve
from pipeline.domain.users.state import User, UserStatus
from pipeline.projections import event_log, folding
from pipeline.projections.folding import FoldResult
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from connectors.store import QueryStore


def ddl(tables: Mapping[str, str]) -> list[str]:
    """The statements that create ``tables["users"]`` and ``tables["accounts"]``."""
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {tables["users"]} (
            user_id String,
            username String,
            email String,
            first_name String,
            last_name String,
            phone Nullable(String),
            role LowCardinality(String),
            status LowCardinality(String),
            created_at DateTime64(6, 'UTC'),
            updated_at DateTime64(6, 'UTC'),
            last_login_at Nullable(DateTime64(6, 'UTC')),
            version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY user_id
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {tables["accounts"]} (
            user_id String,
            email String,
            password_hash String,
            last_login_at Nullable(DateTime64(6, 'UTC')),
            version UInt64
        ) ENGINE = ReplacingMergeTree(version) ORDER BY user_id
        """,
    ]


TABLES = ("users", "accounts")
DDL = tuple(ddl({t: t for t in TABLES}))

USER_COLUMNS = (
    "user_id", "username", "email", "first_name", "last_name", "phone", "role", "status",
    "created_at", "updated_at", "last_login_at", "version",
)  # fmt: skip
ACCOUNT_COLUMNS = ("user_id", "email", "password_hash", "last_login_at", "version")


def load_sql(tables: Mapping[str, str]) -> str:
    """The stored state of the users ``{ids:Array(String)}``, from ``tables``."""
    return f"""
        SELECT u.user_id AS user_id, u.username AS username, u.email AS email,
               u.first_name AS first_name, u.last_name AS last_name, u.phone AS phone,
               u.role AS role, u.status AS status, u.created_at AS created_at,
               u.updated_at AS updated_at, u.last_login_at AS last_login_at,
               u.version AS version, a.password_hash AS password_hash
        FROM {tables["users"]} AS u FINAL
        INNER JOIN {tables["accounts"]} AS a FINAL ON a.user_id = u.user_id
        WHERE u.user_id IN {{ids:Array(String)}}
    """


Folded = dict[str, tuple[User, int]]
"""aggregate id -> (state, aggregate version)."""


def fold(current: Folded, envelopes: Sequence[Envelope]) -> FoldResult:
    """The user fold: ``folding.fold`` with the user domain's evolve."""
    return folding.fold(current, envelopes, evolve=evolve, from_data=from_data)


def row_to_user(row: dict[str, Any]) -> tuple[User, int]:
    """A row of ``load_sql`` back into the domain state and its version: a column for each
    of the state's fields (datetimes already datetimes), the status as its value."""
    fields = {f.name: row[f.name] for f in dataclasses.fields(User)}
    return User(**{**fields, "status": UserStatus(row["status"])}), int(row["version"])


def user_row(user: User, version: int) -> list[Any]:
    return [
        user.user_id, user.username, user.email, user.first_name, user.last_name, user.phone,
        str(user.role), str(user.status), user.created_at, user.updated_at, user.last_login_at,
        version,
    ]  # fmt: skip


def account_row(user: User, version: int) -> list[Any]:
    return [user.user_id, user.email, user.password_hash, user.last_login_at, version]


def public_user(row: dict[str, Any]) -> dict[str, Any]:
    """A ``users`` row as the API shows it (datetimes ISO-8601 UTC)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    """Fold the batch's user events onto the stored rows; write the users that moved.

    Accounts first: ``load_sql`` joins both and users drives the join, so a crash between
    the two inserts leaves users at the older version and the batch redoes."""
    mine = [d for d in batch if d.envelope.aggregate_type == "user"]
    if not mine:
        return ()
    ids = sorted({d.envelope.aggregate_id for d in mine})
    rows = await ctx.clickhouse.query(load_sql(ctx.tables), {"ids": ids})
    current: Folded = {row["user_id"]: row_to_user(row) for row in rows}
    result = fold(current, [d.envelope for d in mine])
    if result.changed:
        states = list(result.changed.values())
        await ctx.clickhouse.insert(
            ctx.tables["accounts"], [account_row(u, v) for u, v in states], ACCOUNT_COLUMNS
        )
        await ctx.clickhouse.insert(
            ctx.tables["users"], [user_row(u, v) for u, v in states], USER_COLUMNS
        )
    return [(mine[i], reason) for i, reason in result.failed]


PROJECTION = Projection(
    name="users",
    topics=(USER_SPEC.events_topic,),
    store=Store.CLICKHOUSE,
    handle=handle,
    tables=TABLES,
    ddl=ddl,
    description="users and their accounts (login), one row per user at its latest version",
)


# ------------------------------------------------------------ reads (what the API asks)
# Every query of the users read model is here, beside its DDL and fold: a column renamed
# or a table rebuilt changes one module (issue 9, section 4).

ACCOUNT_SQL = "SELECT role, status FROM users FINAL WHERE user_id = {id:String}"
LOGIN_SQL = """
    SELECT u.user_id AS user_id, u.role AS role, u.status AS status,
           a.password_hash AS password_hash
    FROM users AS u FINAL
    INNER JOIN accounts AS a FINAL ON a.user_id = u.user_id
    WHERE u.email = {login:String} OR u.username = {login:String}
    LIMIT 1
"""
ACTIVE_ADMINS_SQL = "SELECT user_id FROM users FINAL WHERE role = 'admin' AND status = 'active'"
OTHER_ADMINS_SQL = """
    SELECT count() AS n FROM users FINAL
    WHERE role = 'admin' AND status = 'active' AND user_id != {id:String}
"""
VERSION_SQL = "SELECT version FROM users FINAL WHERE user_id = {id:String}"
USER_SQL = "SELECT * FROM users FINAL WHERE user_id = {id:String}"


async def account(store: QueryStore, user_id: str) -> dict[str, Any] | None:
    """``{"role", "status"}`` of ``user_id``, None if the read model has no such user."""
    rows = await store.query(ACCOUNT_SQL, {"id": user_id})
    return rows[0] if rows else None


async def login(store: QueryStore, name: str) -> dict[str, Any] | None:
    """``{"user_id", "role", "status", "password_hash"}`` of the user whose email or
    username is ``name`` (already normalised: stripped, lower case), None if none."""
    rows = await store.query(LOGIN_SQL, {"login": name})
    return rows[0] if rows else None


async def active_admins(store: QueryStore) -> frozenset[str]:
    """The ids of every active admin."""
    return frozenset(str(row["user_id"]) for row in await store.query(ACTIVE_ADMINS_SQL))


async def other_active_admins(store: QueryStore, user_id: str) -> int:
    """How many active admins there are besides ``user_id``."""
    rows = await store.query(OTHER_ADMINS_SQL, {"id": user_id})
    return int(rows[0]["n"]) if rows else 0


async def version(store: QueryStore, user_id: str) -> int:
    """The aggregate version the read model has applied for ``user_id``; 0 if none."""
    rows = await store.query(VERSION_SQL, {"id": user_id})
    return int(rows[0]["version"]) if rows else 0


async def user_as_of(store: QueryStore, user_id: str, as_of: datetime) -> dict[str, Any] | None:
    """The ``users`` row ``user_id`` had at ``as_of`` (tz-aware): its events up to that
    instant, from the ``event_log`` archive, folded with the same ``evolve`` as the read
    model (seed 000: "what was the e-mail on Jan 1?"). None before the user existed."""
    rows = await event_log.history(store, "user", user_id)
    envelopes = [
        event_log.envelope_of(r, "user", user_id) for r in rows if r["occurred_at"] <= as_of
    ]
    folded = fold({}, envelopes).changed.get(user_id)
    if folded is None:
        return None
    return dict(zip(USER_COLUMNS, user_row(*folded), strict=True))


async def user(store: QueryStore, user_id: str) -> dict[str, Any] | None:
    """The ``users`` row of ``user_id`` (columns as ``USER_COLUMNS``), None if none."""
    rows = await store.query(USER_SQL, {"id": user_id})
    return rows[0] if rows else None


async def page(
    store: QueryStore,
    *,
    limit: int,
    offset: int,
    role: str | None = None,
    status: str | None = None,
    search: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of users (oldest first) and the total that match. ``status`` None leaves
    out deleted users; ``search`` matches a case-insensitive substring of username,
    email, first and last name. Every value is a bound parameter."""
    where: list[str] = ["1"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if role:
        where.append("role = {role:String}")
        params["role"] = role
    if status:
        where.append("status = {status:String}")
        params["status"] = status
    else:
        where.append("status != 'deleted'")
    if search:
        where.append(
            "positionCaseInsensitiveUTF8("
            "concat(username, ' ', email, ' ', first_name, ' ', last_name), {q:String}) > 0"
        )
        params["q"] = search
    cond = " AND ".join(where)
    rows, total = await asyncio.gather(
        store.query(
            f"SELECT * FROM users FINAL WHERE {cond} "
            "ORDER BY created_at, user_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        ),
        store.query(f"SELECT count() AS n FROM users FINAL WHERE {cond}", params),
    )
    return rows, int(total[0]["n"])
