from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from deploy.exceptions import InstallSecretError
from deploy.secrets import install_secret


def test_made_once_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "home" / "claims-key"
    first = install_secret(path, None, may_create=lambda: None)
    assert len(first) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert install_secret(path, None, may_create=lambda: "must not be asked") == first


def test_configured_value_wins(tmp_path: Path) -> None:
    path = tmp_path / "claims-key"
    assert install_secret(path, SecretStr("from-env"), may_create=lambda: None) == "from-env"
    assert not path.exists()


def test_never_made_silently_when_something_depends_on_it(tmp_path: Path) -> None:
    path = tmp_path / "claims-key"
    with pytest.raises(InstallSecretError, match="claims exist"):
        install_secret(path, None, may_create=lambda: "claims exist")
    assert not path.exists()
