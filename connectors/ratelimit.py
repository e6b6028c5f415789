"""Token buckets in Redis, shared by every API instance.

One Lua script does refill + take atomically on the server, with the server's clock
(``TIME``), so instances with skewed clocks agree. It takes from several buckets at once,
all or none: a request refused by one bucket costs nothing in the others. Cost is counted
in events, not requests: a batch of 1,000 takes 1,000 tokens. Used per system and per
partner for ingest (``pipeline/edge/ingest.py``) and per account and client address for
logins (``api/security.py``), which give a try back when it turns out not to count.

All keys of one call must live on one Redis node (one instance here; a Redis Cluster
would need them in one hash slot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

BUCKET = "streamfold:bucket:{name}"

# KEYS: the buckets; ARGV[1]: cost (tokens; negative gives tokens back, never above a
# bucket's burst); ARGV[2k], ARGV[2k+1]: rate (tokens/s) and burst (tokens) of KEYS[k].
# Takes the cost from every bucket if each holds it, else from none. Returns {allowed
# (0/1), tokens left in KEYS[1], in KEYS[2], ...} (strings: Lua numbers are doubles).
_TAKE = """
local cost = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local tokens = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local b = redis.call('HMGET', key, 'tokens', 'ts')
  local left = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  left = math.min(burst, left + math.max(0, now - ts) * rate)
  if left < cost then
    allowed = 0
  end
  tokens[i] = left
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  if allowed == 1 then
    tokens[i] = math.min(burst, tokens[i] - cost)
  end
  redis.call('HSET', key, 'tokens', tostring(tokens[i]), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  out[i + 1] = tostring(tokens[i])
end
return out
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """One bucket's shape: refills ``rate_per_s`` tokens/s up to ``burst`` tokens (a full
    bucket is also where a new or idle one starts)."""

    rate_per_s: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst <= 0:
            raise ValueError("rate_per_s and burst must be positive")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tokens_left: float
    """The fewest tokens left in any of the buckets asked."""
    retry_after_s: float
    """Seconds until ``cost`` tokens are available again in every bucket (0 when allowed)."""
    limited_by: str | None = None
    """Name of the bucket that refused, the one that takes longest to refill when several
    did (None when allowed)."""


class Buckets:
    """``await take({name: Limit, ...}, cost)``: token buckets of any shapes in one Redis,
    charged together."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_TAKE)

    async def _run(self, buckets: Mapping[str, Limit], cost: float) -> tuple[bool, list[float]]:
        if not buckets:
            raise ValueError("no bucket to take from")
        args: list[float] = [cost]
        for limit in buckets.values():
            args += [limit.rate_per_s, limit.burst]
        allowed, *left = await self._script(
            keys=[BUCKET.format(name=name) for name in buckets], args=args
        )
        return bool(int(allowed)), [float(x) for x in left]

    async def take(self, buckets: Mapping[str, Limit], cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from each bucket of ``buckets`` if every one holds them,
        else from none. A cost above a bucket's burst is never allowed."""
        allowed, left = await self._run(buckets, cost)
        if allowed:
            return Decision(True, min(left), 0.0)
        waits = {
            name: max(0.0, (min(cost, limit.burst) - tokens) / limit.rate_per_s)
            for (name, limit), tokens in zip(buckets.items(), left, strict=True)
            if tokens < cost
        }
        slowest = max(waits, key=waits.__getitem__)
        return Decision(False, min(left), waits[slowest], slowest)

    async def give_back(self, name: str, limit: Limit, amount: float = 1.0) -> float:
        """Return ``amount`` tokens taken earlier from bucket ``name`` (never above its
        burst); returns the tokens now in the bucket."""
        _, [left] = await self._run({name: limit}, -amount)
        return left


class TokenBuckets:
    """``await take(name, cost)``: buckets of one shape, ``rate`` tokens/s refill up to
    ``burst``, one bucket per call."""

    def __init__(self, redis: Redis, *, rate_per_s: float, burst: float) -> None:
        self.limit = Limit(rate_per_s, burst)
        self.rate = rate_per_s
        self.burst = burst
        self._buckets = Buckets(redis)

    async def take(self, name: str, cost: float = 1.0) -> Decision:
        return await self._buckets.take({name: self.limit}, cost)

    async def give_back(self, name: str, amount: float = 1.0) -> float:
        """Return ``amount`` tokens taken earlier (a try that turned out not to count, e.g.
        a successful login), never above ``burst``; returns the tokens now in the bucket."""
        return await self._buckets.give_back(name, self.limit, amount)
