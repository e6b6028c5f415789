"""What ``/ws/events`` accepts as ``types`` (query parameter or auth message)."""

from __future__ import annotations

import pytest

from api.routes.events import _types


def test_types_take_a_string_or_a_list_and_refuse_anything_else() -> None:
    assert _types(None) is None
    assert _types("") is None
    assert _types("prospect, student") == frozenset({"prospect", "student"})
    assert _types(["student"]) == frozenset({"student"})
    for bad in (3, [1], {"a": 1}, ["student", None]):
        with pytest.raises(ValueError, match="types"):
            _types(bad)
