"""The compiled ingestion core (``pipeline/edge/native``, module ``streamfold_edge``), when
it is built: ``make install`` builds it where cargo is present. Without it the Python path
runs, which is the reference the core is held equal to (``tests/unit/edge``); ``/readyz``
and ``streamfold status`` say which path a process runs (``edge``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Literal

import structlog

__all__ = ["load"]

log = structlog.get_logger(__name__)


def load(choice: Literal["auto", "compiled", "python"]) -> ModuleType | None:
    """The core module to run, or None for the Python path. ``choice`` is
    ``Settings.edge_core``: ``auto`` takes the core when it imports, ``python`` never
    does (measurement, comparison). Raises ``ImportError`` for ``compiled`` without a
    built core: a deployment that asks for it must not run slower without saying so."""
    if choice == "python":
        return None
    try:
        import streamfold_edge  # noqa: PLC0415  (optional: built only where cargo is)
    except ImportError:
        if choice == "compiled":
            raise
        log.warning("compiled ingestion core not built; the Python path runs (make install)")
        return None
    return streamfold_edge
