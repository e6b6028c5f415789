"""The table check that crashed the command agent on a cold start (pipeline/write/app.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.exceptions import PartitionsMismatch

from pipeline.write.app import CoPartitionedTable


def table(counts: dict[str, int | None]) -> SimpleNamespace:
    consumer = SimpleNamespace(topic_partitions=counts.get)
    return SimpleNamespace(
        app=SimpleNamespace(consumer=consumer),
        name="users-state",
        changelog_topic_name="streamfold-users-state-changelog",
        _verified_source_topics_for_partitions=set(),
    )


def verify(t: SimpleNamespace) -> None:
    CoPartitionedTable._verify_source_topic_partitions(t, "users.commands")  # type: ignore[arg-type]


def test_a_changelog_missing_from_the_metadata_is_asked_again_not_a_mismatch() -> None:
    t = table({"users.commands": 6, "streamfold-users-state-changelog": 0})
    verify(t)  # faust-streaming 0.15 raised PartitionsMismatch here
    assert t._verified_source_topics_for_partitions == set()
    known = {"users.commands": 6, "streamfold-users-state-changelog": 6}
    t.app.consumer.topic_partitions = known.get
    verify(t)
    assert t._verified_source_topics_for_partitions == {"users.commands"}


def test_a_real_mismatch_still_raises() -> None:
    with pytest.raises(PartitionsMismatch):
        verify(table({"users.commands": 6, "streamfold-users-state-changelog": 3}))
