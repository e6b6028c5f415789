"""Validation against a structure the compiler cannot apply rejects the event (it goes
to the dead-letter topic with the reason) instead of stopping the consumer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.edge.recording import Recorder, Structures
from tests.unit.schemas.test_codec import TRACKED


def view(schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    structure = {"json_schema": json.dumps(schema), "required": required, "version": 3}
    return {"unknown_events": "accept", "structures": {TRACKED.event: structure}}


def check(schema: dict[str, Any], *, required: bool = False) -> tuple[list[str], bool, Any]:
    recorder = Recorder(Structures(None, ttl_s=1), None, "test")  # type: ignore[arg-type]
    return recorder.check(TRACKED, view(schema, required=required))


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/definitions/a", "definitions": {"a": {"$ref": "#/definitions/a"}}},
        {"$ref": "#/nope"},
    ],
)
def test_a_structure_that_cannot_be_applied_rejects_even_when_optional(
    schema: dict[str, Any],
) -> None:
    reasons, valid, version = check(schema, required=False)
    assert not valid and version == 3
    assert reasons and "cannot be applied" in reasons[0]


def test_invalid_properties_still_follow_required() -> None:
    schema = {"type": "object", "required": ["missing"]}
    assert check(schema, required=False) == ([], False, 3)
    reasons, valid, _ = check(schema, required=True)
    assert not valid and reasons[0].startswith("properties:")
