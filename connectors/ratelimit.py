"""Per-key token buckets in Redis, shared by every API instance.

One Lua script does refill + take atomically on the server, with the server's clock
(``TIME``), so instances with skewed clocks agree. Cost is counted in events, not
requests: a batch of 1,000 takes 1,000 tokens. Used per API key for ingest
(``connectors/ingest.py``) and per account and client address for logins
(``api/security.py``), which give a try back when it turns out not to count.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

BUCKET = "streamfold:bucket:{name}"

# KEYS[1] bucket; ARGV: rate (tokens/s), burst (tokens), cost (tokens; negative gives
# tokens back, never above burst). Returns {allowed (0/1), tokens left (string: Lua
# numbers are doubles)}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= cost then
  tokens = math.min(burst, tokens - cost)
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tokens_left: float
    retry_after_s: float
    """Seconds until ``cost`` tokens are available again (0 when allowed)."""


class TokenBuckets:
    """``await take(name, cost)``: ``rate`` tokens/s refill up to ``burst``."""

    def __init__(self, redis: Redis, *, rate_per_s: float, burst: float) -> None:
        if rate_per_s <= 0 or burst <= 0:
            raise ValueError("rate_per_s and burst must be positive")
        self.rate = rate_per_s
        self.burst = burst
        self._script = redis.register_script(_TAKE)

    async def take(self, name: str, cost: float = 1.0) -> Decision:
        allowed, left = await self._script(
            keys=[BUCKET.format(name=name)], args=[self.rate, self.burst, cost]
        )
        tokens = float(left)
        if allowed:
            return Decision(True, tokens, 0.0)
        return Decision(False, tokens, max(0.0, (min(cost, self.burst) - tokens) / self.rate))

    async def give_back(self, name: str, amount: float = 1.0) -> float:
        """Return ``amount`` tokens taken earlier (a try that turned out not to count, e.g.
        a successful login), never above ``burst``; returns the tokens now in the bucket."""
        _, left = await self._script(
            keys=[BUCKET.format(name=name)], args=[self.rate, self.burst, -amount]
        )
        return float(left)
