"""A local Kafka + Redis pair without Docker: Kafka from Maven Central jars, Redis from apt.

Used by ``streamfold up/down`` and by the pytest session fixtures. The programs come from
``deploy.binaries``; starting, identifying and stopping the processes, and their pid
files, from ``deploy.processes``.

Layout under ``home``::

    kafka/                  server.properties, cluster.id, data/ (Kafka log.dirs)
    redis/                  appendonly files
    logs/{kafka,redis}.log  service stdout+stderr
    pids/{kafka,redis}.json pid files (see deploy.processes.write_pidfile)
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template

from deploy import binaries
from deploy.exceptions import LocalStackError
from deploy.processes import (
    ServiceProcess,
    check_free,
    free_port,
    is_service,
    pid_alive,
    port_open,
    read_pidfile,
    spawn,
    stop_process,
    tail,
    wait_ready,
    write_pidfile,
)

_KAFKA_FILES = Path(__file__).resolve().parent / "kafka"
_FORMAT_TIMEOUT_S = 120.0


def repo_root() -> Path:
    """Absolute path of the repository checkout (the parent of the ``deploy`` package).

    In an installed (non-editable) package this is the site-packages directory; callers
    that need a writable location should pass explicit paths instead.
    """
    return Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- services


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
    check_free(port, controller_port)
    java = binaries.java()
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
                f"{tail(done.stdout + done.stderr)}"
            )

    proc = spawn([*base, "kafka.Kafka", str(props)], log_path, cwd=data_dir)
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

    wait_ready(proc, "kafka", log_path, timeout_s, ready)
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
    check_free(port)
    binary = binaries.ensure_redis_server()
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
    proc = spawn(argv, log_path, cwd=data_dir)
    wait_for_redis(proc, port, log_path, timeout_s)
    return ServiceProcess(
        name="redis", pid=proc.pid, address=f"127.0.0.1:{port}", log_path=log_path
    )


def wait_for_redis(
    proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout_s: float
) -> None:
    """Wait until the redis-server ``proc`` answers PING on 127.0.0.1:``port``.

    Raises:
        LocalStackError: it exited, or gave no answer within ``timeout_s`` seconds
            (``deploy.processes.wait_ready``; the message quotes ``log_path``).
    """
    import redis  # only needed here

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_ready(proc, "redis", log_path, timeout_s, ready)
    finally:
        client.close()


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
            jars = binaries.kafka_jars(jars_cache)
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
        if not (pid_alive(proc.pid) and is_service(proc.pid, name)):
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
            if proc is not None and pid_alive(proc.pid) and is_service(proc.pid, name):
                # Kafka's controlled shutdown takes a few seconds; give it time.
                stop_process(proc.pid, timeout_s=30 if name == "kafka" else 10)
            path.unlink(missing_ok=True)
            setattr(self, name, None)
