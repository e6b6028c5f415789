"""The roles a streamfold process can run, each in a module of its own here
(``deploy/roles/<role>.py``, an ``async def run(settings, stop, redis, codec)``);
``deploy/runtime.py`` runs one per process, ``deploy/supervisor.py`` supervises them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What one process runs (README, "Processes").

    sinks: the read models and the tracking sinks, and with a ``chdb://`` DSN the engine
    itself (the store: every other process queries through its socket); one process.
    commands: the Faust command agents (changelog-backed tables); scales by count.
    validation: ``tracking.raw`` -> ``tracking.events`` | ``tracking.dlq``; scales by count.
    api: the HTTP API; scales by count on one port (SO_REUSEPORT).
    """

    SINKS = "sinks"
    COMMANDS = "commands"
    VALIDATION = "validation"
    API = "api"
