"""The batch consumer's record shape and the offsets a commit or a checkpoint covers."""

from __future__ import annotations

import pytest

from connectors.batch import Record, highest_offsets


def record(partition: int, offset: int, topic: str = "t") -> Record:
    return Record(topic, partition, offset, b"k", b"v", ())


def test_the_highest_offset_of_each_partition_whatever_the_order() -> None:
    batch = [record(0, 5), record(1, 2), record(0, 3), record(1, 9), record(0, 7, topic="u")]
    assert highest_offsets(batch) == {("t", 0): 5, ("t", 1): 9, ("u", 0): 7}
    assert highest_offsets([]) == {}


def test_a_record_is_immutable_and_hashable() -> None:
    r = record(0, 1)
    with pytest.raises(AttributeError):
        r.offset = 2  # type: ignore[misc]
    assert {r, record(0, 1)} == {r}
