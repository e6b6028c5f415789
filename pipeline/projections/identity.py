"""The identity read models (issue 11, seed 003) and their change notifications.

ClickHouse tables, ReplacingMergeTree on ``version`` (a row is an aggregate's whole state
at that version, ``state`` its JSON for the next fold):

- ``prospect_summary``: one row per prospect; a merged one keeps its row, with
  ``status = 'merged'`` and ``into_id`` (reads resolve it to its survivor);
- ``prospect_search``: (term, prospect id) for each lower-cased name, full name, e-mail
  and phone digits (with and without the country code), ``live = 0`` once a term is gone:
  the search is a prefix scan of the primary key;
- ``students``, ``instructors``: one row each.

The handler folds with the domain's own ``evolve`` and skips what it has applied
(``folding.py``). That is seed 003's inbox: the runner's checkpoint is the "processed
messages" table, and the version skip is the idempotence check, so a re-delivered event
changes nothing (tests/integration/test_identity_projection.py proves it).

After the tables are written, each event applied for the first time becomes one
notification on the Redis stream ``identity:live`` (``NOTIFY_STREAM``): what
``/ws/events`` and ``/api/events/stream`` push. Not while replaying (a rebuild re-sends
no history). Notifications are derived from the stored version, not the batch, so a
batch applied twice never notifies twice; the price is that a crash between the insert
and the XADD loses that batch's notifications (at most once: a client lists again after
it reconnects, and the page does). Audience: ``staff`` for everything, plus the hash of
a student's e-mail for a student's own events (``audience_of``), so a student sees only
themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import phonenumbers

from pipeline.domain.identity import instructors, prospects, students
from pipeline.domain.identity.instructors import INSTRUCTOR_SPEC
from pipeline.domain.identity.prospects import PROSPECT_SPEC
from pipeline.domain.identity.students import STUDENT_SPEC
from pipeline.projections import folding
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from connectors.store import QueryStore

NOTIFY_STREAM = "identity:live"
NOTIFY_MAX = 100_000
"""Entries the stream keeps (approximately): how far back a reconnecting client can resume."""
STAFF = "staff"

_STATE_COLUMNS = ("created_at DateTime64(6, 'UTC')", "updated_at DateTime64(6, 'UTC')",
                  "version UInt64", "state String")  # fmt: skip
_CONTACT_COLUMNS = ("first_name String", "last_name String", "email String",
                    "phone Nullable(String)")  # fmt: skip


@dataclass(frozen=True)
class Model:
    """One aggregate type's table: its columns (DDL) and the row of a state."""

    aggregate_type: str
    table: str
    key: str
    columns: tuple[str, ...]
    row: Callable[[Any], list[Any]]
    spec: Any
    from_data: Callable[[str, dict[str, Any]], Any]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.split(" ", 1)[0] for c in self.columns)


def _prospect_row(p: prospects.Prospect | None) -> list[Any]:
    if p is None:  # a refused merge into an id no prospect has
        return ["", "", "", None, None, "", [], [], [], [], "absent", None, []]
    f = p.profile
    return [
        f.first_name, f.last_name, f.email, f.phone, f.source, f.notes, list(f.other_names),
        list(f.other_emails), list(f.other_phones), list(f.other_sources), str(p.status),
        p.into_id, list(p.converted),
    ]  # fmt: skip


def _contact_row(contact: Any) -> list[Any]:
    return [contact.first_name, contact.last_name, contact.email, contact.phone]


PROSPECTS = Model(
    "prospect",
    "prospect_summary",
    "prospect_id",
    (
        "prospect_id String",
        "first_name String",
        "last_name String",
        "email String",
        "phone Nullable(String)",
        "source Nullable(String)",
        "notes String",
        "other_names Array(String)",
        "other_emails Array(String)",
        "other_phones Array(String)",
        "other_sources Array(String)",
        "status LowCardinality(String)",
        "into_id Nullable(String)",
        "converted Array(String)",
    ),
    _prospect_row,
    prospects.PROSPECT_SPEC,
    prospects.from_data,
)
STUDENTS = Model(
    "student",
    "students",
    "student_id",
    ("student_id String", "prospect_id String", *_CONTACT_COLUMNS, "courses Array(String)"),
    lambda s: [s.prospect_id, *_contact_row(s.contact), list(s.courses)],
    students.STUDENT_SPEC,
    students.from_data,
)
INSTRUCTORS = Model(
    "instructor",
    "instructors",
    "instructor_id",
    ("instructor_id String", "prospect_id String", *_CONTACT_COLUMNS, "active UInt8"),
    lambda i: [i.prospect_id, *_contact_row(i.contact), int(i.active)],
    instructors.INSTRUCTOR_SPEC,
    instructors.from_data,
)
MODELS = {m.aggregate_type: m for m in (PROSPECTS, STUDENTS, INSTRUCTORS)}
TABLES = (*(m.table for m in MODELS.values()), "prospect_search")


def ddl(tables: Mapping[str, str]) -> list[str]:
    """The statements that create every table of ``tables`` (declared name -> physical)."""
    statements = [
        f"CREATE TABLE IF NOT EXISTS {tables[m.table]} ("
        + ", ".join((*m.columns, *_STATE_COLUMNS))
        + f") ENGINE = ReplacingMergeTree(version) ORDER BY {m.key}"
        for m in MODELS.values()
    ]
    statements.append(
        f"CREATE TABLE IF NOT EXISTS {tables['prospect_search']} ("
        "term String, prospect_id String, version UInt64, live UInt8"
        ") ENGINE = ReplacingMergeTree(version) ORDER BY (term, prospect_id)"
    )
    return statements


def phone_terms(phone: str) -> set[str]:
    """E.164 ``+15046218927`` -> {"15046218927", "5046218927"}: a search may type the
    country code or not."""
    terms = {phone.lstrip("+")}
    try:
        terms.add(str(phonenumbers.parse(phone).national_number))
    except phonenumbers.NumberParseException:
        pass
    return terms


def search_terms(p: prospects.Prospect | None) -> set[str]:
    """What a prospect is found by (lower case): names, full names, e-mails, phones."""
    if p is None:
        return set()
    values = p.profile.values()
    terms = {n.lower() for name in values["names"] for n in (name, *name.split())}
    terms |= values["emails"]
    for phone in values["phones"]:
        terms |= phone_terms(phone)
    return {t for t in terms if t}


def audience_of(envelope: Envelope, state: Any) -> str:
    """Who may see a notification: ``staff``, plus ``email:<sha256>`` for a student's own
    events (the student's user account has that e-mail)."""
    if envelope.aggregate_type == STUDENTS.aggregate_type and state is not None:
        return f"{STAFF} {email_audience(state.contact.email)}"
    return STAFF


def email_audience(email: str) -> str:
    return "email:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def notification(envelope: Envelope, audience: str) -> dict[str, str]:
    """The stream entry of one applied event (``{event_type, subject, aggregate_version,
    at, audience}``; ``at``: ``occurred_at`` ISO-8601 UTC)."""
    return {
        "event_type": envelope.event_type,
        "subject": envelope.subject,
        "aggregate_version": str(envelope.aggregate_version),
        "at": envelope.occurred_at.isoformat(),
        "audience": audience,
    }


async def _load(ctx: Context, model: Model, ids: list[str]) -> folding.Folded:
    rows = await ctx.clickhouse.query(
        f"SELECT {model.key} AS id, version, state FROM {ctx.tables[model.table]} FINAL "
        f"WHERE {model.key} IN {{ids:Array(String)}}",
        {"ids": ids},
    )
    current: folding.Folded = {}
    for row in rows:
        state = orjson.loads(row["state"])
        current[row["id"]] = (
            None if state is None else model.spec.state_from_dict(state),
            int(row["version"]),
        )
    return current


def _applied(envelopes: Sequence[Envelope], current: folding.Folded, failed: set[int]) -> list:
    """The envelopes applied for the first time, in order (not skipped, not failed)."""
    at = {key: version for key, (_, version) in current.items()}
    applied = []
    for index, env in enumerate(envelopes):
        if index in failed or env.aggregate_version <= at.get(env.aggregate_id, 0):
            continue
        at[env.aggregate_id] = env.aggregate_version
        applied.append(env)
    return applied


async def _apply(
    ctx: Context, model: Model, mine: Sequence[Decoded], notes: list[dict[str, str]]
) -> Failed:
    envelopes = [d.envelope for d in mine]
    current = await _load(ctx, model, sorted({e.aggregate_id for e in envelopes}))
    result = folding.fold(current, envelopes, evolve=model.spec.evolve, from_data=model.from_data)
    if result.changed:
        rows = []
        for key, (state, version) in result.changed.items():
            data = None if state is None else model.spec.state_to_dict(state)
            times = (state.created_at, state.updated_at) if state is not None else (0, 0)
            text = orjson.dumps(
                data, option=orjson.OPT_SORT_KEYS
            ).decode()  # state_to_dict: datetimes as ISO text
            rows.append([key, *model.row(state), *times, version, text])
        if model is PROSPECTS:
            await _index(ctx, current, result.changed)
        await ctx.clickhouse.insert(ctx.tables[model.table], rows, (*model.names, "created_at",
                                    "updated_at", "version", "state"))  # fmt: skip
    failed = {i for i, _ in result.failed}
    for env in _applied(envelopes, current, failed):
        state = result.changed.get(env.aggregate_id, (None, 0))[0]
        notes.append(notification(env, audience_of(env, state)))
    return [(mine[i], reason) for i, reason in result.failed]


async def _index(ctx: Context, before: folding.Folded, after: folding.Folded) -> None:
    """Search rows of the prospects that moved: new terms live, dropped ones not.
    Written before the summary: a crash between the two redoes both."""
    rows = []
    for key, (state, version) in after.items():
        old = search_terms(before.get(key, (None, 0))[0])
        new = search_terms(state)
        rows += [[term, key, version, 1] for term in new]
        rows += [[term, key, version, 0] for term in old - new]
    if rows:
        await ctx.clickhouse.insert(
            ctx.tables["prospect_search"], rows, ("term", "prospect_id", "version", "live")
        )


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    """Fold each aggregate type's events onto its table; then notify (live only)."""
    failed: list[tuple[Decoded, str]] = []
    notes: list[dict[str, str]] = []
    for kind, model in MODELS.items():
        mine = [d for d in batch if d.envelope.aggregate_type == kind]
        if mine:
            failed += await _apply(ctx, model, mine, notes)
    if notes and not ctx.replaying:
        async with ctx.redis.pipeline(transaction=False) as pipe:
            for note in notes:
                pipe.xadd(NOTIFY_STREAM, note, maxlen=NOTIFY_MAX, approximate=True)
            await pipe.execute()
    return failed


PROJECTION = Projection(
    name="identity",
    topics=(PROSPECT_SPEC.events_topic, STUDENT_SPEC.events_topic, INSTRUCTOR_SPEC.events_topic),
    store=Store.CLICKHOUSE,
    handle=handle,
    tables=TABLES,
    ddl=ddl,
    description="prospects (summary and search), students and instructors; "
    "notifications of each change on identity:live",
)


# ------------------------------------------------------------ reads (what the API asks)

MAX_HOPS = 32
"""How many merges a read follows from a merged prospect to its survivor."""


def _public(row: dict[str, Any]) -> dict[str, Any]:
    row = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    row.pop("state", None)
    return row


async def prospect(store: QueryStore, prospect_id: str) -> dict[str, Any] | None:
    """The ``prospect_summary`` row of ``prospect_id`` as stored (merged ones too), None
    if the read model has none."""
    rows = await store.query(
        "SELECT * FROM prospect_summary FINAL WHERE prospect_id = {id:String} "
        "AND status != 'absent'",
        {"id": prospect_id},
    )
    return _public(rows[0]) if rows else None


async def survivors(store: QueryStore, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> the row of the prospect it resolves to (itself unless merged; a merged
    one's survivor, following ``into_id`` up to ``MAX_HOPS`` merges)."""
    rows: dict[str, dict[str, Any]] = {}
    wanted = set(ids)
    for _ in range(MAX_HOPS):
        missing = sorted(wanted - rows.keys())
        if not missing:
            break
        found = await store.query(
            "SELECT * FROM prospect_summary FINAL WHERE prospect_id IN {ids:Array(String)} "
            "AND status != 'absent'",
            {"ids": missing},
        )
        if not found:
            break
        for row in found:
            rows[row["prospect_id"]] = _public(row)
            if row["status"] == "merged" and row["into_id"]:
                wanted.add(row["into_id"])
    resolved = {}
    for start in ids:
        current = rows.get(start)
        for _ in range(MAX_HOPS):
            if current is None or current["status"] != "merged":
                break
            current = rows.get(current["into_id"])
        if current is not None and current["status"] != "merged":
            resolved[start] = current
    return resolved


def search_term(text: str) -> str:
    """What a search box's text is looked up as: phone-like text ("(504) 621-8927",
    "+1 504") as its digits, anything else lower-cased and stripped."""
    stripped = text.strip()
    digits = "".join(ch for ch in stripped if ch.isdigit())
    if digits and all(ch.isdigit() or ch in "+-() ." for ch in stripped):
        return digits
    return stripped.lower()


async def search(
    store: QueryStore, text: str | None, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of prospects (survivors only, by name) whose name, e-mail or phone
    starts with ``text`` (all when None), and how many match. A merged prospect that
    matches yields its survivor."""
    if not text or not (term := search_term(text)):
        where, params = "status NOT IN ('merged', 'absent')", {}
    else:
        hits = await store.query(
            "SELECT DISTINCT prospect_id FROM prospect_search FINAL "
            "WHERE startsWith(term, {q:String}) AND live = 1 LIMIT 10000",
            {"q": term},
        )
        resolved = await survivors(store, [h["prospect_id"] for h in hits])
        ids = sorted({row["prospect_id"] for row in resolved.values()})
        where, params = "prospect_id IN {ids:Array(String)}", {"ids": ids}
    page = await store.query(
        f"SELECT * FROM prospect_summary FINAL WHERE {where} "
        "ORDER BY last_name, first_name, prospect_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
        {**params, "limit": limit, "offset": offset},
    )
    total = await store.query(
        f"SELECT count() AS n FROM prospect_summary FINAL WHERE {where}", params
    )
    return [_public(r) for r in page], int(total[0]["n"])


async def person(store: QueryStore, model: Model, person_id: str) -> dict[str, Any] | None:
    """The row of a student or instructor (``model``: STUDENTS or INSTRUCTORS)."""
    rows = await store.query(
        f"SELECT * FROM {model.table} FINAL WHERE {model.key} = {{id:String}}", {"id": person_id}
    )
    return _public(rows[0]) if rows else None


async def people(
    store: QueryStore, model: Model, *, email: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of students or instructors by name (only the one with ``email`` if
    not None), and how many there are."""
    only = email is not None
    where, params = ("email = {email:String}", {"email": email}) if only else ("1", {})
    page = await store.query(
        f"SELECT * FROM {model.table} FINAL WHERE {where} ORDER BY last_name, first_name, "
        f"{model.key} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}",
        {**params, "limit": limit, "offset": offset},
    )
    total = await store.query(f"SELECT count() AS n FROM {model.table} FINAL WHERE {where}", params)
    return [_public(r) for r in page], int(total[0]["n"])


async def version(store: QueryStore, model: Model, aggregate_id: str) -> int:
    """The aggregate version ``model``'s table has applied for ``aggregate_id``; 0 if none."""
    rows = await store.query(
        f"SELECT version FROM {model.table} FINAL WHERE {model.key} = {{id:String}}",
        {"id": aggregate_id},
    )
    return int(rows[0]["version"]) if rows else 0
