"""What a projection is: the contract between a read model and the runner that feeds it
(``pipeline/projections/runner.py``). Built-in read models and plugins declare a
:class:`Projection`; its handler receives :class:`Decoded` records and a :class:`Context`.

The contract a handler may rely on, and must keep (README, "Replay and new projections"):

- records arrive **at least once**, in offset order within a partition, in batches; a
  batch can be applied twice (a crash before its checkpoint, a poison record being halved
  out), so the handler is **idempotent**: deterministic keys, version-skipping folds;
- envelopes are decoded (Avro, upcast to the current schema version) before it runs;
- ``Context.replaying`` is True while a version is being rebuilt: no side effects
  (notifications, webhooks) then, history must not be re-sent;
- it writes only to ``Context.tables`` (ClickHouse) or into ``Context.pipe`` (Redis), and
  returns the records it cannot apply, with why: they are dead-lettered. A Redis handler
  whose every write is idempotent on its own (a version-skipping script per key) may
  instead send them through ``Context.redis`` under ``Context.key``, in short pipelines,
  before the runner's MULTI with the checkpoint: one batch then never holds Redis for
  its whole length (``pipeline/projections/timelines.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from connectors.batch import Record
from connectors.clickhouse import ClickHouse
from pipeline.projections import catalog


class Store(StrEnum):
    CLICKHOUSE = "clickhouse"
    REDIS = "redis"


class Decoded(NamedTuple):
    """One source record after decoding: ``value`` is an ``Envelope`` (or what the
    projection's own ``decode`` returned). A named tuple for the reason ``Record`` is one:
    the runner makes one per record."""

    value: Any
    topic: str
    partition: int
    offset: int
    record: Record

    @property
    def envelope(self) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler writes to, for the version being applied."""

    projection: str
    version: int
    tables: Mapping[str, str]
    """Declared table name -> the physical table this version writes."""
    replaying: bool
    """True while the version is being built from history: no side effects."""
    clickhouse: ClickHouse
    redis: Redis
    pipe: Pipeline | None = None
    """Redis projections: queue writes here; the runner executes them in one MULTI/EXEC
    with the checkpoint."""
    key_prefix: str = ""
    """Redis projections: what this version's keys start with ("" when live)."""

    def key(self, name: str) -> str:
        """The Redis key ``name`` (as readers name it) of the version being applied: read
        and write only through this, so a rebuild never touches the live keys."""
        return self.key_prefix + name


Failed = Sequence[tuple[Decoded, str]]
Handler = Callable[[Sequence[Decoded], Context], Awaitable[Failed]]
Decode = Callable[[bytes], Any]


@dataclass(frozen=True)
class Projection:
    """A read model as the runner sees it. Plugins declare one of these under the
    ``streamfold.projections`` entry-point group (``pipeline/projections/registry.py``)."""

    name: str
    topics: tuple[str, ...]
    store: Store
    handle: Handler | None
    tables: tuple[str, ...] = ()
    """ClickHouse tables this projection owns (versioned by the runner)."""
    ddl: Callable[[Mapping[str, str]], Sequence[str]] = lambda tables: ()
    """Declared table -> physical name  ->  the statements that create them (IF NOT EXISTS)."""
    decode: Decode | None = None
    """Bytes -> value; None: the Avro envelope codec (upcast)."""
    analyst_tables: tuple[str, ...] = ()
    """Tables and views of this projection that ``streamfold sql`` may read (the live
    version's names)."""
    description: str = ""
    bind: Callable[[Any], Handler] | None = None
    """For a handler that needs the runner's resources (a ClickHouse session, the
    producer): called with the runner's ``Deps`` once per instance, it returns the handler
    (``handle`` is then not used)."""
    legacy_group: str | None = None
    """The consumer group (after ``<app id>-``) this read model had before it ran on the
    runner: version 1 keeps it, so an upgraded install goes on from its committed offsets
    instead of replaying the topic."""
    rebuild_refused: str = ""
    """Why this projection cannot be rebuilt beside its live version, if it cannot."""
    keys: tuple[str, ...] = ()
    """Redis projections: glob patterns of every key the live version owns (``SCAN
    MATCH``), what a promotion swaps and a drop deletes; needed to rebuild one."""

    @property
    def rebuildable(self) -> bool:
        """Whether a new version can be built beside the live one."""
        return not self.refusal

    @property
    def refusal(self) -> str:
        """Why it is not rebuildable ("" if it is)."""
        if self.store is Store.REDIS and not self.keys:
            return "it declares no key patterns to version"
        return self.rebuild_refused

    def tables_of(self, version: int, *, live: bool) -> dict[str, str]:
        return {t: catalog.physical(t, version, live=live) for t in self.tables}
