"""The API-key read model in Redis: key hash -> system, kept by the ``partner_keys``
projection of partner events (``pipeline/projections/partner_keys/fold.py``), read on every SDK
request.

Redis layout (all JSON):
- ``streamfold:key:<sha256 hex>`` -> {"system_id", "partner_id", "active", "origins"}
- ``streamfold:read-token:<sha256 hex>`` -> {"token_id", "partner_id", "active"}
- ``streamfold:system:<system id>`` -> {"partner_id", "active", "unknown_events",
  "structures": {event name: {"json_schema", "required", "version"}}}
- ``streamfold:partner:<partner id>`` -> {"version": aggregate version, "state": ...}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from pipeline.common.cache import ReadThrough

KEY = "streamfold:key:{key_hash}"
SYSTEM = "streamfold:system:{system_id}"
PARTNER = "streamfold:partner:{partner_id}"
READ_TOKEN = "streamfold:read-token:{token_hash}"
API_KEY_PREFIX = "sk_live_"
"""A system's write key: it sends events and does nothing else."""
READ_TOKEN_PREFIX = "rt_live_"
"""A partner's read token: it reads the partner's analytics and does nothing else."""


def hash_key(api_key: str) -> str:
    """SHA-256 hex of an API key or read token: what events and read models store instead
    of the secret."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SystemKey:
    """What a write key opens: one system of one partner. ``allowed_origins``: the web
    origins whose pages may send its events (normalised; empty = any), see
    ``pipeline.domain.partners.origins``."""

    system_id: str
    partner_id: str
    active: bool
    allowed_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadGrant:
    """What a read token opens: the analytics of every system of ``partner_id``."""

    token_id: str
    partner_id: str
    active: bool


class KeyResolver:
    """api key -> SystemKey, through a small in-process TTL cache in front of Redis.

    A revoked or rotated key stops working on every API instance within ``ttl_s``
    seconds (the cache's lifetime) plus the projection's lag; there is never a call to
    Kafka per request. Only keys that were found are cached: a key issued a moment ago
    must work on its first request (the partner routes answer once the read model has
    it), so a miss is asked of Redis again every time.
    """

    def __init__(self, redis: Redis, *, ttl_s: float = 2.0, max_entries: int = 100_000) -> None:
        self.redis = redis
        self._cache: ReadThrough[str, SystemKey] = ReadThrough(
            self._load, ttl_s=ttl_s, maxsize=max_entries, cache_misses=False
        )

    async def resolve(self, api_key: str) -> SystemKey | None:
        """The system of ``api_key``, or None for a key that is not one. Keys are ASCII
        (``sk_live_`` + URL-safe base64): anything else (a ``writeKey`` holding a lone
        surrogate, which would not even encode for hashing) is unknown, not an error."""
        if not api_key.startswith(API_KEY_PREFIX) or not api_key.isascii():
            return None
        return await self._cache.get(hash_key(api_key))

    async def _load(self, digest: str) -> SystemKey | None:
        raw = await self.redis.get(KEY.format(key_hash=digest))
        if raw is None:
            return None
        d = orjson.loads(raw)
        origins = tuple(d.get("origins", ()))  # records written before origins: any
        return SystemKey(d["system_id"], d["partner_id"], bool(d["active"]), origins)


async def resolve_read_token(redis: Redis, token: str) -> ReadGrant | None:
    """The grant of ``token``, or None for a string that is not a read token issued here.

    Not cached, unlike write keys: a revocation must count from the next request (the
    revoke route answers once the read model shows it), and analytics requests are few
    next to ingestion ones and query ClickHouse anyway, so one Redis GET is noise.
    """
    if not token.startswith(READ_TOKEN_PREFIX) or not token.isascii():
        return None
    raw = await redis.get(READ_TOKEN.format(token_hash=hash_key(token)))
    if raw is None:
        return None
    d = orjson.loads(raw)
    return ReadGrant(d["token_id"], d["partner_id"], bool(d["active"]))


async def get_json(redis: Redis, key: str) -> dict[str, Any] | None:
    raw = await redis.get(key)
    return None if raw is None else orjson.loads(raw)


async def partner_version(redis: Redis, partner_id: str) -> int:
    """The partner's aggregate version the read model has applied; 0 if none yet."""
    stored = await get_json(redis, PARTNER.format(partner_id=partner_id))
    return 0 if stored is None else int(stored["version"])


async def partner_systems(redis: Redis, partner_id: str) -> list[str]:
    stored = await get_json(redis, PARTNER.format(partner_id=partner_id))
    if not stored:
        return []
    return [s["system_id"] for s in stored["state"].get("systems", [])]
