"""The staged sink's container file built by the compiled core equals the Python
reference (``schemas/container.py: PositionedContainer.file_in_python``) byte for byte, on
real recorded payloads and on arbitrary bytes, positions and topics."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.batch import Record
from schemas.codec import AvroCodec
from schemas.container import PositionedContainer
from schemas.registry import SchemaRegistry
from tests.unit.schemas.test_container import envelope

streamfold_edge = pytest.importorskip("streamfold_edge")

REGISTRY = SchemaRegistry.load()
CODEC = AvroCodec(REGISTRY)
EVENT = "TrackingEventRecorded"
SOURCE = REGISTRY.source(EVENT, REGISTRY.latest_version(EVENT))


@dataclass(frozen=True)
class Loose:
    """A record-like object that is not a ``Record`` (the core reads attributes only)."""

    value: bytes | None
    topic: str
    partition: int
    offset: int


def both(records: list) -> tuple[bytes, bytes]:
    compiled = PositionedContainer(SOURCE, streamfold_edge).file(records)
    return compiled, PositionedContainer(SOURCE).file_in_python(records)


def test_recorded_events_give_the_same_file() -> None:
    records = [
        Record("tracking.events", i % 3, 10**12 + i, b"k", CODEC.encode(envelope(i, f"u{i}")), ())
        for i in range(40)
    ]
    compiled, python = both(records)
    assert compiled == python


def test_no_records_give_the_same_file() -> None:
    compiled, python = both([])
    assert compiled == python


positions = st.builds(
    Loose,
    value=st.none() | st.binary(max_size=64),
    topic=st.sampled_from(["tracking.events", "t", ""]) | st.text(max_size=12),
    partition=st.integers(min_value=-(2**40), max_value=2**40),
    offset=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)


@settings(max_examples=300)
@given(st.lists(positions, max_size=30))
def test_any_records_give_the_same_file(records: list[Loose]) -> None:
    compiled, python = both(records)
    assert compiled == python


def test_a_record_without_a_position_is_refused() -> None:
    with pytest.raises(AttributeError):
        PositionedContainer(SOURCE, streamfold_edge).file([object()])
