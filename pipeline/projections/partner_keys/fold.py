"""The partner read model in Redis: each partner's folded state, and what the hot paths
look up from it (API key -> system for ingestion; system -> structures for validation).

Derived from the old and new state of a partner, so a rotated or revoked key disappears
or turns inactive in the same MULTI that stores the new state; the stored ``version``
makes replays and duplicates no-ops (the rule: ``pipeline/projections/folding.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from pipeline.domain import partners
from pipeline.domain.partners import PARTNER_SPEC, Partner, state_to_dict
from pipeline.domain.partners.state import PartnerStatus, SystemStatus
from pipeline.projections import folding
from pipeline.projections.partner_keys.lookups import KEY, PARTNER, READ_TOKEN, SYSTEM
from pipeline.projections.projection import Context, Decoded, Failed, Projection, Store


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


def writes(
    before: Partner | None, after: Partner, version: int
) -> tuple[dict[str, str], list[str]]:
    """(keys to set -> JSON, keys to delete) that move Redis from ``before`` to ``after``."""
    sets: dict[str, str] = {
        PARTNER.format(partner_id=after.partner_id): _text(
            {"version": version, "state": state_to_dict(after)}
        )
    }
    partner_active = after.status == PartnerStatus.ACTIVE
    for system in after.systems.values():
        active = partner_active and system.status == SystemStatus.ACTIVE
        sets[KEY.format(key_hash=system.key_hash)] = _text(
            {
                "system_id": system.system_id,
                "partner_id": after.partner_id,
                "active": active,
                "origins": list(system.allowed_origins),
            }
        )
        sets[SYSTEM.format(system_id=system.system_id)] = _text(system_view(after, system))
    for token in after.read_tokens.values():
        # kept after a revocation (inactive), so a revoked token is told from a wrong one
        sets[READ_TOKEN.format(token_hash=token.token_hash)] = _text(
            {
                "token_id": token.token_id,
                "partner_id": after.partner_id,
                "active": partner_active and token.active,
            }
        )
    old = {s.key_hash for s in before.systems.values()} if before else set()
    new = {s.key_hash for s in after.systems.values()}
    return sets, [KEY.format(key_hash=h) for h in sorted(old - new)]


def system_view(partner: Partner, system: Any) -> dict[str, Any]:
    return {
        "system_id": system.system_id,
        "partner_id": partner.partner_id,
        "name": system.name,
        "active": partner.status == PartnerStatus.ACTIVE and system.status == SystemStatus.ACTIVE,
        "unknown_events": str(system.unknown_events),
        "allowed_origins": list(system.allowed_origins),
        "structures": {
            name: {"json_schema": s.json_schema, "required": s.required, "version": s.version}
            for name, s in system.structures.items()
        },
    }


async def handle(batch: Sequence[Decoded], ctx: Context) -> Failed:
    """Fold the batch's partner events onto the states stored in Redis and queue, in
    ``ctx.pipe`` (one MULTI/EXEC with the checkpoint), the keys that move."""
    assert ctx.pipe is not None
    mine = [d for d in batch if d.envelope.aggregate_type == "partner"]
    if not mine:
        return ()
    ids = sorted({d.envelope.aggregate_id for d in mine})
    current: folding.Folded = {}
    for raw in await ctx.redis.mget([ctx.key(PARTNER.format(partner_id=i)) for i in ids]):
        if raw is not None:
            stored = orjson.loads(raw)
            state = partners.state_from_dict(stored["state"])
            current[state.partner_id] = (state, int(stored["version"]))
    result = folding.fold(
        current, [d.envelope for d in mine], evolve=partners.evolve, from_data=partners.from_data
    )
    for pid, (state, version) in result.changed.items():
        sets, deletes = writes(current.get(pid, (None, 0))[0], state, version)
        ctx.pipe.mset({ctx.key(k): v for k, v in sets.items()})
        if deletes:
            ctx.pipe.delete(*(ctx.key(k) for k in deletes))
    return [(mine[i], reason) for i, reason in result.failed]


PROJECTION = Projection(
    name="partner_keys",
    topics=(PARTNER_SPEC.events_topic,),
    store=Store.REDIS,
    handle=handle,
    keys=tuple(k.split("{")[0] + "*" for k in (PARTNER, KEY, SYSTEM, READ_TOKEN)),
    description="partner states, API key -> system, read token -> partner and "
    "system -> structures lookups",
)
