"""The local stack's programs: Kafka's broker jars from Maven Central, redis-server from
apt-get, Java from JAVA_HOME or PATH; fetched or installed on first use."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.exceptions import LocalStackError
from deploy.processes import tail

KAFKA_VERSION = "3.9.1"

_KAFKA_FILES = Path(__file__).resolve().parent / "kafka"
_JARS_MARKER = ".complete"
_MVN_TIMEOUT_S = 900.0
_APT_TIMEOUT_S = 900.0


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
                    f"{tail(out)}"
                ) from exc
            if done.returncode != 0 or not any(jars.glob("kafka_2.13-*.jar")):
                raise LocalStackError(
                    f"mvn failed to fetch Kafka {KAFKA_VERSION} jars (exit {done.returncode}):\n"
                    f"{tail(done.stdout + done.stderr)}"
                )
            (jars / _JARS_MARKER).write_text(f"{KAFKA_VERSION}\n")
            if target.exists():  # a folder without marker: leftover of an old layout
                shutil.rmtree(target)
            os.rename(jars, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def ensure_redis_server() -> str:
    """Return the path of ``redis-server``, installing Debian's package when missing
    (:func:`ensure_debian_binary`); the package's own service is not used, we start our
    own instance with start_redis. Raises LocalStackError."""
    return ensure_debian_binary("redis-server", "redis-server")


def ensure_chromium() -> str:
    """Return the path of Debian's ``chromium`` (the browser tests drive it headless),
    installing the package when missing. Raises LocalStackError."""
    return ensure_debian_binary("chromium", "chromium")


def ensure_debian_binary(binary: str, package: str) -> str:
    """Return the path of ``binary``, installing ``package`` with apt-get when missing.

    Installation (``apt-get update`` then ``apt-get install -y <package>``, ~20-120 s)
    only happens when running as root.

    Raises:
        LocalStackError: not installed and not root, apt-get is absent, or it failed.
    """
    where = tuple(
        f"{d}/{binary}" for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/games")
    )
    found = shutil.which(binary) or _first_existing(*where)
    if found:
        return found
    if os.geteuid() != 0:
        raise LocalStackError(
            f"{binary} is not installed and we are not root: "
            f"run `sudo apt-get install -y {package}` (or put {binary} on PATH)"
        )
    apt = shutil.which("apt-get")
    if apt is None:
        raise LocalStackError(f"{binary} is not installed and apt-get is unavailable")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", package]):
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
                f"{tail(done.stdout + done.stderr)}"
            )
    found = shutil.which(binary) or _first_existing(*where)
    if not found:
        raise LocalStackError(f"apt-get installed {package} but {binary} was not found")
    return found


def _first_existing(*paths: str) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def java() -> str:
    """Path of ``java`` (``$JAVA_HOME/bin/java``, else on PATH). Raises LocalStackError."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise LocalStackError("java not found: install Java 17 (openjdk-17-jre-headless)")
    return found
