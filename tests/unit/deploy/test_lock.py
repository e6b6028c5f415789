"""The dependency locks (``make lock``) against pyproject.toml and what installs from them.

Catches a dependency added to pyproject.toml without ``make lock``, a lock edited by hand
so the runtime and test locks disagree, a pin without hashes, and an install path
(Makefile, Dockerfile) that resolves on its own instead of installing the lock.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
# Evaluated as the locks were resolved: CPython 3.11 on linux x86_64.
ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def pins(name: str) -> dict[str, Version]:
    text = (ROOT / name).read_text()
    found: dict[str, Version] = {}
    for block in re.split(r"\n(?=\S)", text):
        match = PIN.match(block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{name}: {match.group(1)} has no hash"
        found[canonicalize_name(match.group(1))] = Version(match.group(3))
    assert found, f"{name} pins nothing"
    return found


def declared(extra: str | None = None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    raw = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", declared()),
        ("requirements-test.lock", declared() + declared("test")),
    ],
)
def test_every_declared_dependency_is_pinned_within_its_bounds(
    lock: str, requirements: list[Requirement]
) -> None:
    pinned = pins(lock)
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate(ENVIRONMENT):
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req} is not in {lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {req}: run `make lock`"
        )


def test_what_ships_is_what_the_tests_ran_against() -> None:
    runtime, test = pins("requirements.lock"), pins("requirements-test.lock")
    differ = {n: (v, test.get(n)) for n, v in runtime.items() if test.get(n) != v}
    assert not differ, f"runtime lock differs from the test lock: {differ}"
    for tool in ("pytest", "schemathesis", "ruff", "uv", "pip-tools"):
        assert canonicalize_name(tool) not in runtime, f"{tool} must not ship"
    assert "uv" not in test and "pip-tools" not in test, "the locking tool is not a test dependency"


def test_installs_come_from_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(TEST_LOCK)" in makefile
    assert "pip install -q --no-deps -e ." in makefile
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "COPY requirements.lock" in dockerfile
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert re.search(r"pip install --no-deps \.", dockerfile)
