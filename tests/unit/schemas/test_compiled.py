"""Compiled Avro encoders (``schemas/compiled.py``) write what fastavro writes, for every
writer schema in ``schemas/avro``, and refuse what is not exactly of the schema's types
(``AvroCodec`` then lets fastavro decide)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.compiled import compile_encoder, encode_long
from schemas.registry import SchemaRegistry

REGISTRY = SchemaRegistry.load()
SCHEMAS = [
    (event_type, version)
    for event_type in REGISTRY.event_types()
    for version in range(1, REGISTRY.latest_version(event_type) + 1)
]


def values(t: Any) -> st.SearchStrategy[Any]:
    """Values of Avro type ``t`` (the subset the project's schemas use)."""
    if isinstance(t, list):
        null, other = t
        assert null == "null"
        return st.none() | values(other)
    kind = t["type"] if isinstance(t, dict) else t
    logical = t.get("logicalType") if isinstance(t, dict) else None
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: values(f["type"]) for f in t["fields"]})
    if kind == "array":
        return st.lists(values(t["items"]), max_size=5)
    if logical == "uuid":
        return st.uuids().map(str)
    if logical == "timestamp-micros":
        return st.datetimes(timezones=st.just(UTC))
    return {
        "string": st.text(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1),
        "boolean": st.booleans(),
    }[kind]


def fastavro_bytes(source: dict[str, Any], record: Any) -> bytes:
    buffer = io.BytesIO()
    schema = fastavro.parse_schema(source, named_schemas={})
    fastavro.schemaless_writer(buffer, schema, record, strict=True)
    return buffer.getvalue()


@pytest.mark.parametrize(("event_type", "version"), SCHEMAS, ids=str)
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_schema_compiles_and_writes_what_fastavro_writes(
    event_type: str, version: int, data: st.DataObject
) -> None:
    source = REGISTRY.source(event_type, version)
    encoder = compile_encoder(source)
    assert encoder is not None, f"{event_type} v{version} did not compile"
    record = data.draw(values(source))
    assert encoder(record) == fastavro_bytes(source, record)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_a_long_is_encoded_as_fastavro_encodes_it(n: int) -> None:
    assert encode_long(n) == fastavro_bytes({"type": "long"}, n)  # type: ignore[arg-type]


SOURCE = {
    "type": "record", "name": "R",
    "fields": [
        {"name": "s", "type": "string"},
        {"name": "i", "type": "int"},
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "o", "type": ["null", "string"]},
    ],
}  # fmt: skip
GOOD = {"s": "x", "i": 1, "t": datetime(2026, 12, 2, tzinfo=UTC), "o": None}


@pytest.mark.parametrize(
    "record",
    [
        {**GOOD, "extra": 1},  # strict: no field the schema lacks
        {k: v for k, v in GOOD.items() if k != "o"},  # nor one missing
        {**GOOD, "s": "lone \ud800 surrogate"},  # not UTF-8
        {**GOOD, "i": 2**31},  # not a 32-bit int
        {**GOOD, "i": True},  # a bool is an int to Python, not to this encoder
        {**GOOD, "t": datetime(2026, 12, 2)},  # naive
        {**GOOD, "o": 3},
    ],
    ids=repr,
)
def test_what_is_not_exactly_of_the_schema_is_refused(record: dict[str, Any]) -> None:
    encoder = compile_encoder(SOURCE)
    assert encoder is not None and encoder(GOOD) == fastavro_bytes(SOURCE, GOOD)
    with pytest.raises((TypeError, KeyError, UnicodeEncodeError, OverflowError)):
        encoder(record)


def test_a_type_it_does_not_know_is_left_to_fastavro() -> None:
    for t in ({"type": "map", "values": "string"}, ["string", "null"], "double"):
        schema = {"type": "record", "name": "R", "fields": [{"name": "a", "type": t}]}
        assert compile_encoder(schema) is None
