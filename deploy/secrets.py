"""Install secrets: configured in settings, or kept in a file under ``home``, made once.

A secret that other state depends on must never be replaced silently. The claims key
names every uniqueness claim on Kafka (``pipeline.write.routing.ClaimKeys``): a new key on an
install that already holds claims would let every email and username be taken twice.
So a missing key file is only made when nothing depends on it yet.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from connectors.kafka import topic_has_records
from deploy.exceptions import InstallSecretError
from pipeline.common.settings import Settings
from pipeline.write.aggregates import AGGREGATES
from pipeline.write.routing import ClaimKeys

CLAIMS_KEY_FILE = "claims-key"
JWT_SECRET_FILE = "jwt-secret"


def install_secret(
    path: Path, configured: SecretStr | None, *, may_create: Callable[[], str | None]
) -> str:
    """The configured value, else the file's, else a new 32-byte urlsafe token written to
    ``path`` (mode 0600). ``may_create`` returns None when a new secret is safe, else the
    reason it is not.

    Raises:
        InstallSecretError: no secret is configured or stored and one may not be made.
    """
    if configured is not None:
        return configured.get_secret_value()
    if path.exists():
        return path.read_text().strip()
    refusal = may_create()
    if refusal is not None:
        raise InstallSecretError(f"no secret at {path}: {refusal}")
    value = secrets.token_urlsafe(32)
    try:
        write_private(path, value + "\n")
    except FileExistsError:
        # another process of this install made it first (`serve` starts every role at
        # once on a fresh install: the loser crashed and was restarted): theirs is the key
        return path.read_text().strip()
    return value


def write_private(path: Path, text: str) -> None:
    """Create ``path`` (and its parents) holding ``text``, readable by its owner only
    (0600 from the first byte: written then chmod-ed, a file would be world-readable for a
    moment under the usual umask). Raises ``FileExistsError`` if it exists: a secret is
    made once, never overwritten.

    The whole text appears at once: it is written to a private temporary file beside
    ``path`` and hard-linked into place (``link`` fails if ``path`` exists). Created empty
    and then written, a process reading at the wrong moment took the empty file for the
    key, and two processes of one install named uniqueness claims differently."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(staging, path)
    finally:
        os.unlink(staging)


def claim_keys(settings: Settings) -> ClaimKeys:
    """The install's :class:`ClaimKeys` (``Settings.claims_key`` or ``<home>/claims-key``).

    Raises:
        InstallSecretError: the key is missing and claims already exist on Kafka (restore
            the file or set STREAMFOLD_CLAIMS_KEY to the key they were made with), or
            ``env=production`` has no configured key (every process must share one).
    """

    def may_create() -> str | None:
        if settings.env == "production":
            return "set STREAMFOLD_CLAIMS_KEY (every process of an install needs the same key)"
        for aggregate in AGGREGATES:
            topic = aggregate.spec.reservations_topic
            if topic and topic_has_records(settings.kafka_bootstrap, topic):
                return (
                    f"{topic} already holds claims made under another key; restore the file "
                    "or set STREAMFOLD_CLAIMS_KEY to that key (a new one would let every "
                    "email and username be taken twice)"
                )
        return None

    path = settings.home.resolve() / CLAIMS_KEY_FILE
    return ClaimKeys(install_secret(path, settings.claims_key, may_create=may_create).encode())


def with_jwt_secret(settings: Settings, *, create: bool) -> Settings:
    """``settings`` with ``jwt_secret`` filled: configured, else ``<home>/jwt-secret``.

    ``create`` (``streamfold up``, the local stack) or ``env=test`` makes the file on first
    use. There is no built-in secret: a constant in the source signs tokens anyone can
    forge.

    Raises:
        InstallSecretError: no secret is configured or stored and ``create`` is False.
    """

    def may_create() -> str | None:
        if create or settings.env == "test":
            return None
        return "set STREAMFOLD_JWT_SECRET (every API process needs the same one)"

    path = settings.home.resolve() / JWT_SECRET_FILE
    secret = install_secret(path, settings.jwt_secret, may_create=may_create)
    return settings.model_copy(update={"jwt_secret": SecretStr(secret)})
