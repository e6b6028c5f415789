"""The partner list for admins (issue 25, seed 002: ``GET /api/admin/partners``).

Which partners exist, by name, comes from the ``event_log`` archive (its rows are ordered by
aggregate type and id, so the partner rows are one range; names and e-mails never change
after ``PartnerCreated``); each listed partner's status and systems from the
``partner_keys`` read model in Redis, one ``MGET`` a page. A partner created within the
archive's lag is listed once the archive has it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis

from pipeline.projections.partner_keys.lookups import PARTNER

if TYPE_CHECKING:
    from connectors.store import QueryStore

_MATCHING = """
    FROM event_log FINAL
    WHERE aggregate_type = 'partner' AND event_type = 'PartnerCreated'
      AND positionCaseInsensitiveUTF8(
            concat(JSONExtractString(data, 'name'), ' ', JSONExtractString(data, 'email')),
            {search:String}) > 0
"""
PAGE_SQL = (
    "SELECT aggregate_id AS partner_id, JSONExtractString(data, 'name') AS name, "
    "JSONExtractString(data, 'email') AS email, occurred_at AS created_at"
    + _MATCHING
    + "ORDER BY lower(name), partner_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
)
COUNT_SQL = "SELECT count() AS total" + _MATCHING


async def page(
    store: QueryStore, redis: Redis, *, search: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """(partners by name, how many match ``search``, a part of the name or e-mail). Each:
    ``partner_id``, ``name``, ``email``, ``created_at``, ``status`` (``active``,
    ``inactive``; None while the read model has not applied the partner),
    ``systems`` and ``active_systems`` (counts)."""
    # a case-insensitive substring, as the users read model searches (no pattern syntax:
    # "%" is looked for as itself); "" matches every partner
    params = {"search": search or "", "limit": limit, "offset": offset}
    rows = await store.query(PAGE_SQL, params)
    [counted] = await store.query(COUNT_SQL, {"search": params["search"]})
    keys = [PARTNER.format(partner_id=r["partner_id"]) for r in rows]
    states = await redis.mget(keys) if keys else []
    for row, raw in zip(rows, states, strict=True):
        state = orjson.loads(raw)["state"] if raw else None
        systems = list(state["systems"]) if state else []
        row["status"] = state["status"] if state else None
        row["systems"] = len(systems)
        row["active_systems"] = sum(1 for s in systems if s["status"] == "active")
    return rows, int(counted["total"])
