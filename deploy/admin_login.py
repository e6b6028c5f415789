"""The configured admin's password and token, for the CLI commands that call the API
(``create-admin``, ``load-users``, ``sql``, ``projections``), and how they fail."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import typer
from rich.console import Console

from deploy.secrets import write_private
from pipeline.common.settings import Settings

console = Console(stderr=True)


def fail(message: str) -> int:
    """Print ``message`` as an error (stderr); the exit code to leave with (1)."""
    console.print(f"[red]error[/red]: {message}")
    return 1


def admin_password_path(settings: Settings) -> Path:
    return settings.home.resolve() / "admin-password"


def admin_password(settings: Settings, *, create: bool) -> str:
    """STREAMFOLD_ADMIN_PASSWORD, else ``<home>/admin-password`` (made once if ``create``,
    mode 0600). The password itself is never printed: terminals, CI logs and scrollback
    keep what is printed."""
    if settings.admin_password is not None:
        return settings.admin_password.get_secret_value()
    path = admin_password_path(settings)
    if path.exists():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # made by an older version, or copied in: owner only
        return path.read_text().strip()
    if not create:
        raise typer.Exit(fail(f"no admin password: set STREAMFOLD_ADMIN_PASSWORD or create {path}"))
    password = secrets.token_urlsafe(18)
    write_private(path, password + "\n")
    return password


def admin_token(settings: Settings) -> str:
    response = httpx.post(
        f"{settings.api_url}/api/auth/token",
        data={"username": settings.admin_email, "password": admin_password(settings, create=False)},
        timeout=30,
    )
    if response.status_code != 200:
        raise typer.Exit(fail(f"admin login failed: {response.status_code} {response.text}"))
    return response.json()["access_token"]
