"""``streamfold serve``: every role as a child process, supervised.

Start order: the sinks process first (with ``chdb://`` it owns the engine: the others
query through its socket, so the API waits for it), then the command agents, validation
and ``api_workers`` API processes sharing the API port. A child that exits on its own is
logged and started again (backoff from 1 s, doubling to 30 s, reset once it has run a
minute). SIGTERM/SIGINT stop the children in reverse order, each role given
``STOP_TIMEOUT_S`` to flush, commit and leave its groups before SIGKILL.

Children die with the supervisor even when it is SIGKILLed (Linux ``PR_SET_PDEATHSIG``):
a crash of ``serve`` is a crash of every role, as it was of the one process before, and
nothing is left behind holding the engine's lock or the port.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import structlog

from connectors import metrics
from connectors.store import StoreClient, socket_path
from deploy.roles import Role
from pipeline.common.settings import Settings

log = structlog.get_logger(__name__)

STOP_TIMEOUT_S = 30.0
STORE_WAIT_S = 120.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Child:
    role: Role
    index: int
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 1.0
    stopping: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"


def _shared_metrics_dir(settings: Settings) -> None:
    """Give every child one empty Prometheus multiprocess directory (``connectors.metrics``):
    values a previous ``serve`` left there would be summed into this one's counters."""
    directory = settings.home.resolve() / "run" / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[metrics.MULTIPROC_ENV] = str(directory)


def plan(settings: Settings) -> list[Child]:
    """The children of one ``serve``, in start order."""
    worker = [sys.executable, "-m", "deploy.cli", "worker", "--role"]
    children = [
        Child(Role.SINKS, 0, [*worker, Role.SINKS]),
        Child(Role.COMMANDS, 0, [*worker, Role.COMMANDS]),
        *(Child(Role.VALIDATION, i, [*worker, Role.VALIDATION])
          for i in range(settings.validation_workers)),
        *(Child(Role.API, i, [sys.executable, "-m", "deploy.cli", "api"])
          for i in range(settings.api_workers)),
    ]  # fmt: skip
    return children


class Supervisor:
    """Runs `plan(settings)` until stopped; writes who runs where to ``status_path``."""

    def __init__(self, settings: Settings, status_path: Path) -> None:
        self.settings = settings
        self.children = plan(settings)
        self.status_path = status_path

    async def run(self) -> int:
        """Until SIGINT/SIGTERM. Returns the exit status: 0 when every child stopped
        cleanly, 1 otherwise."""
        _shared_metrics_dir(self.settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            first, rest = self.children[0], self.children[1:]
            await self._start(first)
            first.watcher = asyncio.create_task(self._watch(first, stop))
            if self.settings.clickhouse_dsn.startswith("chdb:"):
                await self._until_store_answers(stop)
            for child in rest:
                await self._start(child)
                child.watcher = asyncio.create_task(self._watch(child, stop))
            self._write_status()
            log.info("serve started", children=[c.name for c in self.children])
            await stop.wait()
        finally:
            clean = await self._stop_all()
            self.status_path.unlink(missing_ok=True)
            log.info("stopped", role="serve", clean=clean)
        return 0 if clean else 1

    async def _start(self, child: Child) -> None:
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # its own process group: a SIGTERM to serve's group (`streamfold down` signals
            # the group it started) must not reach the children at once, out of order,
            # and again when the supervisor stops them (seen: a child that had stopped
            # cleanly died of the second SIGTERM while exiting, code -15)
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        log.info("child started", child=child.name, pid=child.proc.pid)

    async def _watch(self, child: Child, stop: asyncio.Event) -> None:
        """Restart ``child`` whenever it exits while nobody asked it to."""
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            metrics.process_dead(child.proc.pid)
            if child.stopping or stop.is_set():
                return
            ran_s = time.monotonic() - child.started_at
            if ran_s > 60:
                child.backoff_s = 1.0
            log.error("child exited; restarting", child=child.name, pid=child.proc.pid,
                      code=code, ran_s=round(ran_s, 1), in_s=child.backoff_s)  # fmt: skip
            try:
                await asyncio.wait_for(stop.wait(), timeout=child.backoff_s)
                return  # stopping meanwhile
            except TimeoutError:
                pass
            child.backoff_s = min(child.backoff_s * 2, 30.0)
            child.restarts += 1
            await self._start(child)
            self._write_status()

    async def _until_store_answers(self, stop: asyncio.Event) -> None:
        """Until the sinks process answers on its socket (its tables are migrated by
        then). Raises RuntimeError after ``STORE_WAIT_S`` or if it keeps dying."""
        client = StoreClient(socket_path(self.settings.home), timeout_s=5)
        deadline = time.monotonic() + STORE_WAIT_S
        try:
            while not await client.ping():
                if stop.is_set():
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the store process did not answer on {client.path} within "
                        f"{STORE_WAIT_S:.0f} s (see its log lines above)"
                    )
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()

    async def _stop_all(self) -> bool:
        """Reverse start order by role: API first (drain requests), the sinks last."""
        clean = True
        for role in (Role.API, Role.VALIDATION, Role.COMMANDS, Role.SINKS):
            group = [c for c in self.children if c.role is role and c.proc is not None]
            results = await asyncio.gather(*(self._stop(c) for c in group))
            clean = clean and all(results)
        return clean

    async def _stop(self, child: Child) -> bool:
        child.stopping = True
        proc = child.proc
        assert proc is not None
        if child.watcher is not None:
            child.watcher.cancel()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("child did not stop; killing", child=child.name, pid=proc.pid)
                proc.kill()
                await proc.wait()
                return False
        if proc.returncode != 0:
            log.error("child stopped badly", child=child.name, code=proc.returncode)
        return proc.returncode == 0

    def _write_status(self) -> None:
        """``[{role, index, pid, restarts}]`` for ``streamfold status``."""
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {"role": str(c.role), "index": c.index, "restarts": c.restarts,
             "pid": c.proc.pid if c.proc else None}
            for c in self.children
        ]  # fmt: skip
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(rows))
        tmp.replace(self.status_path)


def read_status(status_path: Path) -> list[dict[str, object]]:
    """What `Supervisor` wrote last; ``[]`` when ``serve`` is not running."""
    try:
        return list(orjson.loads(status_path.read_bytes()))
    except (OSError, ValueError):
        return []
