"""CPU time per role of a running stack, for "µs of CPU per event" figures.

A role is what a process runs: ``api``, each ``worker --role`` (``sinks`` holds the
ClickHouse store), ``kafka``, ``redis``. Times are user + system seconds read with psutil
from the live processes, so a process that exits between two readings loses its share
(none does during a bench phase: ``serve`` restarts nothing unless a child crashes).
"""

from __future__ import annotations

from collections.abc import Mapping

import psutil

__all__ = ["CpuMeter", "per_event_us"]


def _role(process: psutil.Process) -> str:
    try:
        argv = process.cmdline()
    except psutil.Error:
        return "gone"
    if "--role" in argv and argv.index("--role") + 1 < len(argv):
        return argv[argv.index("--role") + 1]
    if "deploy.cli" in argv:
        return argv[argv.index("deploy.cli") + 1] if argv[-1] != "deploy.cli" else "cli"
    return process.name()


class CpuMeter:
    """CPU seconds by role of ``serve_pid``'s process tree and of the named services
    (``{"kafka": pid, "redis": pid}``)."""

    def __init__(self, serve_pid: int, services: Mapping[str, int]) -> None:
        self.serve_pid = serve_pid
        self.services = dict(services)

    def read(self) -> dict[str, float]:
        """``{role: cpu seconds so far}``; the ``serve`` supervisor itself is ``serve``."""
        totals: dict[str, float] = {}

        def add(role: str, process: psutil.Process) -> None:
            try:
                times = process.cpu_times()
            except psutil.Error:
                return
            totals[role] = totals.get(role, 0.0) + times.user + times.system

        try:
            root = psutil.Process(self.serve_pid)
            add("serve", root)
            for child in root.children(recursive=True):
                add(_role(child), child)
        except psutil.NoSuchProcess:
            pass
        for role, pid in self.services.items():
            try:
                add(role, psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        return totals


def per_event_us(
    before: Mapping[str, float], after: Mapping[str, float], events: int
) -> dict[str, float]:
    """µs of CPU per event by role between two :meth:`CpuMeter.read` results, and their
    ``total``; empty when ``events`` is 0."""
    if events <= 0:
        return {}
    used = {role: after[role] - before.get(role, 0.0) for role in after}
    out = {role: round(seconds * 1e6 / events, 2) for role, seconds in sorted(used.items())}
    out["total"] = round(sum(used.values()) * 1e6 / events, 2)
    return out
