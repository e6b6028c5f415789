"""The compiled ingestion core (``pipeline/edge/native``, module ``streamfold_edge``), when
it is built: ``make install`` builds it where cargo is present. The edge decodes requests
with it and the tracking sink and plugins build their staged container files with it
(``schemas/container.py``). Without it the Python paths run, which are the reference the
core is held equal to (``tests/unit/edge``); ``/readyz`` and ``streamfold status`` say
which path the API runs (``edge``).
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
        import streamfold_edge
    except ImportError:
        if choice == "compiled":
            raise
        log.warning("compiled ingestion core not built; the Python path runs (make install)")
        return None
    return streamfold_edge
