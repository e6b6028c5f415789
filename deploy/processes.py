"""Processes of the local stack: ports, pid files, starting detached and stopping.

Services are started detached (own session, output to a log file) and described by JSON
pid files, so a later ``streamfold down`` in another process can stop them. Nothing here
ever signals a process it cannot identify as one it started (no kill-by-name). Process
state (alive, zombie, command line) comes from psutil.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

from deploy.exceptions import LocalStackError

TAIL_LINES = 40
_POLL_S = 0.2
_MORE_FRAMES = re.compile(r"\s*\.\.\. \d+ more")

_log = logging.getLogger(__name__)

# Popen objects of services started by this process, by pid. Kept so that stopping them
# reaps the child (no zombie that still "exists" for kill(pid, 0)) and so Popen.__del__
# does not warn about a still-running child.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Last ``lines`` lines of ``text`` without Java stack frames.

    Frames would push the actual cause (e.g. "Address already in use") out of the tail.
    """
    kept = [
        line
        for line in text.strip().splitlines()
        if not line.lstrip().startswith("at ") and not _MORE_FRAMES.match(line)
    ]
    return "\n".join(kept[-lines:])


def file_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        # Only the end matters and logs can be large: read the last 64 KiB.
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return tail(text, lines)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was unused a moment ago (the OS picks it).

    There is an unavoidable race until the service binds it; starts fail loudly then.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """True if a TCP connect to ``host:port`` succeeds within 0.5 s."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process.

    Reaps it first when it is our own exited child, so a stopped service reads as gone.
    """
    if pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our child started otherwise: reap it
        if reaped == pid:
            return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # exists, owned by someone else


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def is_service(pid: int, name: str) -> bool:
    """True if ``pid`` looks like the service ``name`` (guards against pid reuse)."""
    argv = _cmdline(pid)
    if name == "kafka":
        return "kafka.Kafka" in argv
    if name == "redis":
        return bool(argv) and "redis-server" in argv[0]
    return False


def stop_process(pid: int, *, timeout_s: float = 20) -> bool:
    """Stop ``pid``: SIGTERM, wait up to ``timeout_s`` seconds, then SIGKILL.

    Signals the whole process group when ``pid`` leads its own group (our services are
    started with ``start_new_session=True``), otherwise only ``pid``. Nothing else is
    ever signalled.

    Returns:
        True if the process was running when called, False if it was already gone.

    Raises:
        LocalStackError: the process survived SIGKILL for 5 s (e.g. stuck in the kernel).
    """
    if not pid_alive(pid):
        _CHILDREN.pop(pid, None)
        return False
    try:
        group = os.getpgid(pid) == pid
    except ProcessLookupError:
        return False

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    send(signal.SIGTERM)
    if not _wait_gone(pid, timeout_s):
        _log.warning("pid %d ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout_s)
        send(signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise LocalStackError(f"pid {pid} is still alive after SIGKILL")
    _CHILDREN.pop(pid, None)
    return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class ServiceProcess:
    """A started service. ``address`` is ``host:port``; ``log_path`` its stdout+stderr."""

    name: str
    pid: int
    address: str
    log_path: Path

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def write_pidfile(path: Path, proc: ServiceProcess) -> None:
    """Write ``{"name", "pid", "address", "log_path"}`` as JSON to ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": proc.name,
        "pid": proc.pid,
        "address": proc.address,
        "log_path": str(proc.log_path),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)


def read_pidfile(path: Path) -> ServiceProcess | None:
    """Read a pid file written by write_pidfile; None if missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
        return ServiceProcess(
            name=str(data["name"]),
            pid=int(data["pid"]),
            address=str(data["address"]),
            log_path=Path(data["log_path"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def spawn(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached in ``cwd``, stdout and stderr appended to ``log_path``.

    Raises:
        LocalStackError: the program could not be started.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting\n".encode())
        log.flush()
        try:
            # Own session: Ctrl-C in the starting terminal does not reach the service, and
            # stop_process can signal the whole group.
            proc = subprocess.Popen(
                argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise LocalStackError(f"cannot start {argv[0]}: {exc}") from exc
    _CHILDREN[proc.pid] = proc
    return proc


def wait_ready(
    proc: subprocess.Popen[bytes],
    name: str,
    log_path: Path,
    timeout_s: float,
    ready: Callable[[], bool],
) -> None:
    """Poll ``ready`` until true; on early exit or timeout kill ``proc`` and raise."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            _CHILDREN.pop(proc.pid, None)
            raise LocalStackError(
                f"{name} exited with code {proc.returncode} while starting; "
                f"{log_path} ends with:\n{file_tail(log_path)}"
            )
        if ready():
            return
        if time.monotonic() >= deadline:
            stop_process(proc.pid, timeout_s=5)
            raise LocalStackError(
                f"{name} was not ready within {timeout_s:.0f} s (killed); "
                f"{log_path} ends with:\n{file_tail(log_path)}"
            )
        time.sleep(_POLL_S)


def check_free(*ports: int) -> None:
    """Raise ``LocalStackError`` if a port on 127.0.0.1 is taken: fail fast with a clear
    message instead of a service dying on bind after seconds."""
    for port in ports:
        if port_open("127.0.0.1", port):
            raise LocalStackError(f"port {port} on 127.0.0.1 is already in use")
