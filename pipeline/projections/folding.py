"""Folding envelopes onto stored read-model state: the shared core of every projection
that keeps an aggregate's current state: a projection ignores anything at or below the
version it has applied (README.md, "How it fits together": Projections)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.domain.errors import DomainError
from schemas.envelope import Envelope

Folded = dict[str, tuple[Any, int]]
"""aggregate id -> (state, aggregate version)."""


@dataclass(frozen=True, slots=True)
class FoldResult:
    changed: Folded
    """Aggregates whose state moved: their new (state, version)."""
    skipped: int
    """Envelopes at or below the stored version: already applied (duplicates, replays)."""
    failed: list[tuple[int, str]]
    """(index in the input, reason) of envelopes that cannot apply: dead-letter them."""


def fold(
    current: Folded,
    envelopes: Sequence[Envelope],
    *,
    evolve: Callable[[Any, Any, datetime], Any],
    from_data: Callable[[str, dict[str, Any]], Any],
) -> FoldResult:
    """Apply ``envelopes`` (in topic order) on top of ``current`` with the domain's evolve.

    An envelope at or below an aggregate's version is skipped. One that skips a version
    (a gap) or that evolve refuses is reported in ``failed`` and not applied.
    """
    changed: Folded = {}
    skipped = 0
    failed: list[tuple[int, str]] = []
    for index, env in enumerate(envelopes):
        state, version = changed.get(env.aggregate_id) or current.get(env.aggregate_id, (None, 0))
        if env.aggregate_version <= version:
            skipped += 1
            continue
        if env.aggregate_version != version + 1:
            failed.append((index, f"gap: at version {version}, got {env.aggregate_version}"))
            continue
        try:
            event = from_data(env.event_type, env.data)
            new_state = evolve(state, event, env.occurred_at)
        except DomainError as exc:
            failed.append((index, f"cannot apply {env.event_type}: {exc}"))
            continue
        changed[env.aggregate_id] = (new_state, env.aggregate_version)
    return FoldResult(changed, skipped, failed)
