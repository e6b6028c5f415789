"""A local Kafka + Redis pair without Docker: Kafka from Maven Central jars, Redis from apt.

Used by ``streamfold up/down`` and by the pytest session fixtures. Processes are started
detached (own session, output to a log file) and described by JSON pid files, so a later
``streamfold down`` in another process can stop them. Nothing here ever kills a process
it cannot identify as one it started (no kill-by-name).

Layout under ``home``::

    kafka/                  server.properties, cluster.id, data/ (Kafka log.dirs)
    redis/                  appendonly files
    logs/{kafka,redis}.log  service stdout+stderr
    pids/{kafka,redis}.json pid files (see write_pidfile)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

from deploy.exceptions import LocalStackError

KAFKA_VERSION = "3.9.1"

_KAFKA_FILES = Path(__file__).resolve().parent / "kafka"
_JARS_MARKER = ".complete"
_MVN_TIMEOUT_S = 900.0
_APT_TIMEOUT_S = 900.0
_FORMAT_TIMEOUT_S = 120.0
_TAIL_LINES = 40
_POLL_S = 0.2
_MORE_FRAMES = re.compile(r"\s*\.\.\. \d+ more")

_log = logging.getLogger(__name__)

# Popen objects of services started by this process, by pid. Kept so that stopping them
# reaps the child (no zombie that still "exists" for kill(pid, 0)) and so Popen.__del__
# does not warn about a still-running child.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def repo_root() -> Path:
    """Absolute path of the repository checkout (the parent of the ``deploy`` package).

    In an installed (non-editable) package this is the site-packages directory; callers
    that need a writable location should pass explicit paths instead.
    """
    return Path(__file__).resolve().parent.parent


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    """Last ``lines`` lines of ``text`` without Java stack frames.

    Frames would push the actual cause (e.g. "Address already in use") out of the tail.
    """
    kept = [
        line
        for line in text.strip().splitlines()
        if not line.lstrip().startswith("at ") and not _MORE_FRAMES.match(line)
    ]
    return "\n".join(kept[-lines:])


def _file_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        # Only the end matters and logs can be large: read the last 64 KiB.
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 65536))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return _tail(text, lines)


# --------------------------------------------------------------------------- binaries


def kafka_jars(cache_dir: Path) -> Path:
    """Return the folder holding the Kafka broker jars, fetching them with Maven if needed.

    Args:
        cache_dir: where fetched jar folders live; created if missing.

    Returns:
        ``cache_dir / f"kafka-{KAFKA_VERSION}"``, containing ~57 jars (~40 MB) and a
        ``.complete`` marker. Use it as the classpath ``<dir>/*``.

    The jars are copied by ``mvn dependency:copy-dependencies`` (``deploy/kafka/pom.xml``)
    into a temporary sibling folder, the marker is written, and the folder is renamed into
    place, so a half-finished fetch is never mistaken for a complete one. A lock file
    serialises concurrent callers (e.g. parallel test sessions). A cold fetch takes
    ~45 s; with a warm ``~/.m2`` ~3 s; an existing folder returns immediately.

    Raises:
        LocalStackError: ``mvn`` is not on PATH, or it failed or timed out (the message
            carries the tail of its output).
    """
    target = cache_dir / f"kafka-{KAFKA_VERSION}"
    if (target / _JARS_MARKER).is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".kafka-{KAFKA_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _JARS_MARKER).is_file():  # another process fetched while we waited
            return target
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalStackError(
                "mvn not found on PATH: install Maven 3.8+ and Java 17 "
                "(apt-get install -y maven openjdk-17-jre-headless) to fetch the Kafka broker"
            )
        work = Path(tempfile.mkdtemp(prefix=f".kafka-{KAFKA_VERSION}-", dir=cache_dir))
        try:
            # Run from a copy of the pom so Maven never writes into the source tree.
            shutil.copy2(_KAFKA_FILES / "pom.xml", work / "pom.xml")
            jars = work / "jars"
            argv = [
                mvn, "-B", "-q", "-f", str(work / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={jars}", "-DincludeScope=runtime",
            ]  # fmt: skip
            try:
                done = subprocess.run(
                    argv, cwd=work, stdin=subprocess.DEVNULL, capture_output=True,
                    text=True, timeout=_MVN_TIMEOUT_S, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                out = (exc.stdout or "") if isinstance(exc.stdout, str) else ""
                raise LocalStackError(
                    f"mvn did not finish fetching Kafka jars within {_MVN_TIMEOUT_S:.0f} s:\n"
                    f"{_tail(out)}"
                ) from exc
            if done.returncode != 0 or not any(jars.glob("kafka_2.13-*.jar")):
                raise LocalStackError(
                    f"mvn failed to fetch Kafka {KAFKA_VERSION} jars (exit {done.returncode}):\n"
                    f"{_tail(done.stdout + done.stderr)}"
                )
            (jars / _JARS_MARKER).write_text(f"{KAFKA_VERSION}\n")
            if target.exists():  # a folder without marker: leftover of an old layout
                shutil.rmtree(target)
            os.rename(jars, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def ensure_redis_server() -> str:
    """Return the path of ``redis-server``, installing it with apt-get when missing.

    Installation (``apt-get update`` then ``apt-get install -y redis-server``, ~20-60 s)
    only happens when running as root; the Debian package's own service is not used, we
    start our own instance with start_redis.

    Raises:
        LocalStackError: not installed and not root, apt-get is absent, or it failed.
    """
    found = shutil.which("redis-server") or _first_existing(
        "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"
    )
    if found:
        return found
    if os.geteuid() != 0:
        raise LocalStackError(
            "redis-server is not installed and we are not root: "
            "run `sudo apt-get install -y redis-server` (or put redis-server on PATH)"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        raise LocalStackError("redis-server is not installed and apt-get is unavailable")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "redis-server"]):
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                timeout=_APT_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(f"{' '.join(argv)} timed out after {_APT_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            raise LocalStackError(
                f"{' '.join(argv)} failed (exit {done.returncode}):\n"
                f"{_tail(done.stdout + done.stderr)}"
            )
    found = shutil.which("redis-server") or _first_existing("/usr/bin/redis-server")
    if not found:
        raise LocalStackError("apt-get installed redis-server but the binary was not found")
    return found


def _first_existing(*paths: str) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None)


# --------------------------------------------------------------------------- ports / pids


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
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        # /proc/<pid>/stat: "pid (comm) S ..."; comm may contain spaces, split after ')'.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _is_service(pid: int, name: str) -> bool:
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
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_pidfile(path: Path) -> ServiceProcess | None:
    """Read a pid file written by write_pidfile; None if missing or unreadable."""
    try:
        data = json.loads(path.read_text())
        return ServiceProcess(
            name=str(data["name"]),
            pid=int(data["pid"]),
            address=str(data["address"]),
            log_path=Path(data["log_path"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- services


def _spawn(argv: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
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


def _wait_ready(
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
                f"{log_path} ends with:\n{_file_tail(log_path)}"
            )
        if ready():
            return
        if time.monotonic() >= deadline:
            stop_process(proc.pid, timeout_s=5)
            raise LocalStackError(
                f"{name} was not ready within {timeout_s:.0f} s (killed); "
                f"{log_path} ends with:\n{_file_tail(log_path)}"
            )
        time.sleep(_POLL_S)


def _check_free(*ports: int) -> None:
    """Fail fast with a clear message instead of a service dying on bind after seconds."""
    for port in ports:
        if port_open("127.0.0.1", port):
            raise LocalStackError(f"port {port} on 127.0.0.1 is already in use")


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise LocalStackError("java not found: install Java 17 (openjdk-17-jre-headless)")
    return found


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).

    Same format as ``StorageTool random-uuid`` without paying for a JVM start. Ids starting
    with '-' are skipped, like Kafka's Uuid.randomUuid does (they parse as an option).
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def start_kafka(
    *,
    jars: Path,
    data_dir: Path,
    port: int,
    controller_port: int,
    log_path: Path,
    heap_mb: int = 512,
    timeout_s: float = 60,
) -> ServiceProcess:
    """Start a single-node KRaft Kafka broker on 127.0.0.1 and wait until it serves metadata.

    Args:
        jars: folder from kafka_jars.
        data_dir: broker home; gets ``server.properties``, ``cluster.id`` (kept so a
            restart reuses the formatted storage) and ``data/`` (log.dirs).
        port: client (PLAINTEXT) port; controller_port: KRaft controller port.
        log_path: broker stdout+stderr (appended).
        heap_mb: JVM max heap in MiB.
        timeout_s: seconds to wait for readiness (the broker needs ~3-5 s on 2 cores).

    Returns:
        ServiceProcess(name="kafka", address="127.0.0.1:<port>").

    Raises:
        LocalStackError: java missing, storage format failed, the broker exited, or it did
            not answer a metadata request within ``timeout_s`` (it is then killed). The
            message carries the log tail.
    """
    if port == controller_port:
        raise LocalStackError(f"port and controller_port must differ (both {port})")
    _check_free(port, controller_port)
    java = _java()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dirs = data_dir / "data"
    props = data_dir / "server.properties"
    template = Template((_KAFKA_FILES / "server.properties.template").read_text())
    props.write_text(
        template.substitute(
            port=port, controller_port=controller_port, data_dir=str(log_dirs), node_id=1
        )
    )
    base = [
        java,
        f"-Xms{min(256, heap_mb)}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:ParallelGCThreads=2",
        "-XX:ConcGCThreads=1",
        "-Djava.awt.headless=true",
        # One argv element: the JVM expands the '*' itself, no shell involved.
        "-cp",
        f"{jars.resolve()}/*",
        f"-Dlog4j.configuration=file:{_KAFKA_FILES / 'log4j.properties'}",
    ]

    id_file = data_dir / "cluster.id"
    cluster_id = id_file.read_text().strip() if id_file.is_file() else ""
    if not cluster_id:
        cluster_id = _new_cluster_id()
        id_file.write_text(cluster_id + "\n")
    if not (log_dirs / "meta.properties").is_file():
        argv = [
            *base, "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(props), "--ignore-formatted",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=_FORMAT_TIMEOUT_S, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError("kafka storage format timed out") from exc
        if done.returncode != 0:
            raise LocalStackError(
                f"kafka storage format failed (exit {done.returncode}):\n"
                f"{_tail(done.stdout + done.stderr)}"
            )

    proc = _spawn([*base, "kafka.Kafka", str(props)], log_path, cwd=data_dir)
    address = f"127.0.0.1:{port}"

    from confluent_kafka.admin import AdminClient  # heavy import; only needed here

    # log_level 0: librdkafka would otherwise print "Connection refused" lines to stderr
    # every few hundred ms while the broker boots.
    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})

    def ready() -> bool:
        if not port_open("127.0.0.1", port):
            return False
        try:
            return bool(admin.list_topics(timeout=2).brokers)
        except Exception:  # KafkaException while the broker is still electing itself
            return False

    _wait_ready(proc, "kafka", log_path, timeout_s, ready)
    return ServiceProcess(name="kafka", pid=proc.pid, address=address, log_path=log_path)


def start_redis(
    *, data_dir: Path, port: int, log_path: Path, timeout_s: float = 20
) -> ServiceProcess:
    """Start ``redis-server`` on 127.0.0.1:``port`` and wait until it answers PING.

    Persistence: AOF on (``--appendonly yes``), RDB snapshots off; files under ``data_dir``.

    Returns:
        ServiceProcess(name="redis", address="127.0.0.1:<port>").

    Raises:
        LocalStackError: redis-server missing and not installable (see
            ensure_redis_server), it exited, or no PING answer within ``timeout_s`` seconds.
    """
    import redis  # only needed here

    _check_free(port)
    binary = ensure_redis_server()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--save", "",
        "--appendonly", "yes",
        "--daemonize", "no",  # default logfile "" = stdout, i.e. log_path
    ]  # fmt: skip
    proc = _spawn(argv, log_path, cwd=data_dir)
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        _wait_ready(proc, "redis", log_path, timeout_s, ready)
    finally:
        client.close()
    return ServiceProcess(
        name="redis", pid=proc.pid, address=f"127.0.0.1:{port}", log_path=log_path
    )


# --------------------------------------------------------------------------- the pair


@dataclass
class LocalStack:
    """A Kafka + Redis pair under one home directory (see the module docstring for layout).

    Used by pytest session fixtures and ``streamfold up``/``down``.
    """

    home: Path
    kafka: ServiceProcess | None = None
    redis: ServiceProcess | None = None

    @classmethod
    def start(
        cls,
        home: Path,
        *,
        kafka_port: int | None = None,
        redis_port: int | None = None,
        jars_cache: Path | None = None,
    ) -> LocalStack:
        """Start (or reuse) Kafka and Redis under ``home``; returns when both are ready.

        Ports default to free ones. A service whose pid file names a live process of the
        right kind with its port open is reused instead of started again, so calling this
        twice is harmless. Redis starts while Kafka boots. Typical: ~4-6 s warm, plus
        ~45 s the first time for the Kafka jar fetch (``jars_cache``, default
        ``<repo>/.local/cache``).

        Raises:
            LocalStackError: a service could not be started (anything this call started is
                stopped again), or a running service uses a different port than requested
                (run ``streamfold down`` first).
        """
        home = home.resolve()
        stack = cls(home=home)
        jars_cache = jars_cache if jars_cache is not None else repo_root() / ".local" / "cache"
        for sub in ("kafka", "redis", "logs", "pids"):
            (home / sub).mkdir(parents=True, exist_ok=True)

        stack.kafka = stack._reusable("kafka", kafka_port)
        stack.redis = stack._reusable("redis", redis_port)

        def run_kafka() -> ServiceProcess:
            jars = kafka_jars(jars_cache)
            port = kafka_port or free_port()
            controller_port = free_port()
            while controller_port == port:
                controller_port = free_port()
            proc = start_kafka(
                jars=jars, data_dir=home / "kafka", port=port, controller_port=controller_port,
                log_path=home / "logs" / "kafka.log",
            )  # fmt: skip
            write_pidfile(stack._pidfile("kafka"), proc)
            return proc

        def run_redis() -> ServiceProcess:
            proc = start_redis(
                data_dir=home / "redis", port=redis_port or free_port(),
                log_path=home / "logs" / "redis.log",
            )  # fmt: skip
            write_pidfile(stack._pidfile("redis"), proc)
            return proc

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="localstack") as pool:
            kafka_future = pool.submit(run_kafka) if stack.kafka is None else None
            redis_future = pool.submit(run_redis) if stack.redis is None else None
            errors: list[BaseException] = []
            for attr, future in (("kafka", kafka_future), ("redis", redis_future)):
                if future is None:
                    continue
                try:
                    setattr(stack, attr, future.result())
                except BaseException as exc:  # collect; the other service may need stopping
                    errors.append(exc)
        if errors:
            # Stop only what this call started; a reused service was running before.
            for future, attr in ((kafka_future, "kafka"), (redis_future, "redis")):
                proc = getattr(stack, attr)
                if future is not None and proc is not None:
                    stop_process(proc.pid)
                    stack._pidfile(attr).unlink(missing_ok=True)
            first = errors[0]
            if isinstance(first, LocalStackError):
                raise first
            raise LocalStackError(f"local stack failed to start: {first!r}") from first
        return stack

    def _pidfile(self, name: str) -> Path:
        return self.home / "pids" / f"{name}.json"

    def _reusable(self, name: str, want_port: int | None) -> ServiceProcess | None:
        """The running service from the pid file, or None (stale pid files are removed)."""
        path = self._pidfile(name)
        proc = read_pidfile(path)
        if proc is None:
            return None
        if not (pid_alive(proc.pid) and _is_service(proc.pid, name)):
            path.unlink(missing_ok=True)
            return None
        if want_port is not None and want_port != proc.port:
            raise LocalStackError(
                f"{name} is already running from {self.home} on {proc.address} (pid {proc.pid}), "
                f"not on requested port {want_port}: run `streamfold down` first"
            )
        if not port_open(proc.host, proc.port):
            # Alive but not listening: probably still booting or wedged; do not start a
            # second instance on the same data directory.
            raise LocalStackError(
                f"{name} pid {proc.pid} is alive but {proc.address} is closed; "
                f"check {proc.log_path} or run `streamfold down`"
            )
        return proc

    @property
    def kafka_bootstrap(self) -> str:
        """``host:port`` of the broker. Raises LocalStackError if Kafka is not started."""
        if self.kafka is None:
            raise LocalStackError("kafka is not started")
        return self.kafka.address

    @property
    def redis_url(self) -> str:
        """``redis://127.0.0.1:<port>/0``. Raises LocalStackError if Redis is not started."""
        if self.redis is None:
            raise LocalStackError("redis is not started")
        return f"redis://{self.redis.address}/0"

    def stop(self) -> None:
        """Stop both services (from this object or the pid files) and remove the pid files.

        A pid file whose pid now belongs to an unrelated process is removed without
        signalling anything.

        Raises:
            LocalStackError: a process survived SIGKILL (see stop_process).
        """
        for name in ("redis", "kafka"):
            path = self._pidfile(name)
            proc = getattr(self, name) or read_pidfile(path)
            if proc is not None and pid_alive(proc.pid) and _is_service(proc.pid, name):
                # Kafka's controlled shutdown takes a few seconds; give it time.
                stop_process(proc.pid, timeout_s=30 if name == "kafka" else 10)
            path.unlink(missing_ok=True)
            setattr(self, name, None)
