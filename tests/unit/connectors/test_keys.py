"""API-key lookups refuse what cannot be a key without asking Redis (or crashing)."""

from __future__ import annotations

import pytest

from pipeline.projections.partner_keys.lookups import KeyResolver


class NoRedis:
    async def get(self, key: str) -> None:
        raise AssertionError("a key that cannot exist must not be looked up")


@pytest.mark.parametrize(
    "api_key",
    ["sk_live_\ud800", "sk_live_\udc00abc", "sk_live_é", "not-a-key", ""],
)
async def test_a_key_that_cannot_exist_is_unknown(api_key: str) -> None:
    # "\ud800" comes from a JSON writeKey: valid JSON, no UTF-8 encoding (was a 500)
    assert await KeyResolver(NoRedis()).resolve(api_key) is None  # type: ignore[arg-type]
