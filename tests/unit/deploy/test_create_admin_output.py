"""``streamfold create-admin`` never shows the admin password (issue 7, section 4): it is
written to ``<home>/admin-password`` (mode 0600 from creation) and the output says where.

Only the CLI's own part runs here: the command on Kafka and the login wait are replaced
(they run for real in every e2e session, ``tests/conftest.py: server``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deploy import cli, runtime
from deploy.secrets import write_private

USER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("STREAMFOLD_HOME", str(home))
    monkeypatch.setenv("STREAMFOLD_ENV", "test")
    monkeypatch.delenv("STREAMFOLD_ADMIN_PASSWORD", raising=False)
    used: dict[str, Any] = {}

    async def created(settings: Any, email: str, username: str, password: str) -> Any:
        used["password"] = password
        return USER_ID, []

    monkeypatch.setattr(cli, "_create_admin", created)
    monkeypatch.setattr(cli, "_until_admin_works", lambda *args: None)
    # it would point the process's logging at CliRunner's stream, closed after the test
    monkeypatch.setattr(runtime, "configure_logging", lambda *args: None)
    old = os.umask(0o022)  # the usual umask: a plain write would be world-readable
    try:
        yield home
    finally:
        os.umask(old)


def run() -> str:
    """create-admin's output (stdout and stderr)."""
    result = CliRunner().invoke(cli.app, ["create-admin", "--wait-s", "1"])
    assert result.exit_code == 0, result.output
    return result.output


def unwrapped(output: str) -> str:
    return "".join(output.split())  # a secret cut by line wrapping is still shown


def test_the_password_goes_to_the_file_only(home: Path) -> None:
    output = run()
    path = home.resolve() / "admin-password"
    password = path.read_text().strip()
    assert len(password) >= 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in unwrapped(output)
    assert f"password in {path} " in output  # and it says where, in one piece
    assert password not in unwrapped(run())  # a second run reads the same file
    assert path.read_text().strip() == password


def test_a_loose_password_file_is_made_owner_only(home: Path) -> None:
    path = home.resolve() / "admin-password"
    path.parent.mkdir(parents=True)
    path.write_text("an operator's own password\n")
    path.chmod(0o644)
    output = run()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "an operator's own password" not in output


def test_a_configured_password_is_neither_written_nor_shown(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMFOLD_ADMIN_PASSWORD", "configured-password-1")
    output = run()
    assert not (home / "admin-password").exists()
    assert "configured-password-1" not in unwrapped(output)


def test_write_private_is_owner_only_from_creation_and_never_overwrites(tmp_path: Path) -> None:
    old = os.umask(0)  # even a permissive umask cannot widen it
    try:
        path = tmp_path / "a" / "secret"
        write_private(path, "s3cret\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "s3cret\n"
    with pytest.raises(FileExistsError):
        write_private(path, "other\n")
