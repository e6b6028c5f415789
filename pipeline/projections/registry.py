"""Which projections an install runs: the built-ins, every ``streamfold.projections``
entry point of the installed distributions, and the ``module:attribute`` paths of
``STREAMFOLD_PROJECTION_PLUGINS``.

An entry point (or path) names a :class:`~pipeline.projections.projection.Projection`, a
sequence of them, or a function of no arguments returning either (Python packaging,
"Entry points specification": ``[project.entry-points."streamfold.projections"]``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any

from pipeline.projections import (
    command_status,
    event_log,
    identity,
    inbound,
    timelines,
    users,
)
from pipeline.projections.partner_keys import fold as partner_keys
from pipeline.projections.projection import Projection
from pipeline.projections.tracking import sink as tracking_sinks

GROUP = "streamfold.projections"

BUILTIN: tuple[Projection, ...] = (
    users.PROJECTION,
    event_log.PROJECTION,
    partner_keys.PROJECTION,
    command_status.PROJECTION,
    timelines.PROJECTION,
    identity.PROJECTION,
    inbound.PROJECTION,
    tracking_sinks.SINK,
    tracking_sinks.REJECTIONS,
)


class PluginError(Exception):
    """A plugin that does not load, or does not name projections, or reuses a name."""


def _projections(obj: Any, where: str) -> list[Projection]:
    if callable(obj) and not isinstance(obj, Projection):
        obj = obj()
    found = [obj] if isinstance(obj, Projection) else list(obj) if isinstance(obj, Iterable) else []
    if not found or not all(isinstance(p, Projection) for p in found):
        raise PluginError(f"{where} names no Projection (got {type(obj).__name__})")
    return found


def _load_path(path: str) -> Any:
    module, _, attribute = path.partition(":")
    if not module or not attribute:
        raise PluginError(f"{path!r} is not a module:attribute path")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{path}: {exc}") from exc


@functools.cache
def installed(paths: tuple[str, ...] = ()) -> tuple[Projection, ...]:
    """:func:`discover`, once per process (what is installed does not change while it runs)."""
    return tuple(discover(paths))


def discover(paths: Sequence[str] = ()) -> list[Projection]:
    """The built-ins, then the entry points (by name), then ``paths``.

    Raises:
        PluginError: a plugin fails to load, names no projection, or two share a name.
    """
    found = list(BUILTIN)
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginError(f"entry point {ep.name} ({ep.value}): {exc!r}") from exc
        found.extend(_projections(loaded, f"entry point {ep.name}"))
    for path in paths:
        found.extend(_projections(_load_path(path), path))
    names = [p.name for p in found]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PluginError(f"two projections named {', '.join(duplicates)}")
    return found


def analyst_tables(paths: Sequence[str] = ()) -> frozenset[str]:
    """What analyst SQL may read besides the built-in read models: the ``analyst_tables``
    of every installed projection."""
    return frozenset(t for p in installed(tuple(paths)) for t in p.analyst_tables)
