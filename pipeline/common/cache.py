"""The one read-through cache of the API and the edge: a value loaded from a read model
(an account's role, a write key's system, a system's structures), kept in process for a
few seconds, so a busy client costs one store round trip per TTL and not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

__all__ = ["ReadThrough"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING = object()


class ReadThrough(Generic[K, V]):
    """``load(key)`` once per ``ttl_s`` seconds per key (cachetools' ``TTLCache``, at most
    ``maxsize`` keys, least recently used out first).

    cache_misses: whether a load that found nothing (None) is kept too. Keep it False
    where a value may appear any moment and must work at once (a write key issued a
    moment ago); True where a miss is as good an answer as a value for the TTL. ``ttl_s``
    <= 0 loads every time. One event loop per instance (no lock): a value that expires
    while it is read is a miss, never a ``KeyError`` (a cold ``make run`` once stopped the
    validation process on exactly that).
    """

    def __init__(
        self,
        load: Callable[[K], Awaitable[V | None]],
        *,
        ttl_s: float,
        maxsize: int,
        cache_misses: bool = True,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._misses = cache_misses
        self._cache: TTLCache[K, V | None] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_s, timer=timer) if ttl_s > 0 else None
        )

    async def get(self, key: K, *, fresh: bool = False) -> V | None:
        """The value of ``key``: from the cache unless ``fresh`` or not there (then loaded
        and kept). Raises what ``load`` raises (nothing is kept then)."""
        if self._cache is not None and not fresh:
            cached = self._cache.get(key, _MISSING)  # one lookup: see the class docstring
            if cached is not _MISSING:
                return cached  # type: ignore[return-value]
        value = await self._load(key)
        if self._cache is not None and (value is not None or self._misses):
            self._cache[key] = value
        return value
