from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
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


def test_no_jwt_secret_means_no_start_outside_the_local_stack(tmp_path: Path) -> None:
    from deploy.secrets import with_jwt_secret
    from pipeline.common.settings import Settings

    settings = Settings(env="development", home=tmp_path)
    with pytest.raises(InstallSecretError, match="STREAMFOLD_JWT_SECRET"):
        with_jwt_secret(settings, create=False)
    made = with_jwt_secret(settings, create=True)  # what `streamfold up` does
    assert made.jwt_secret is not None and len(made.jwt_secret.get_secret_value()) >= 32
    # from then on every start of that install reads the same secret
    again = with_jwt_secret(settings, create=False)
    assert again.jwt_secret == made.jwt_secret


def test_processes_racing_to_make_it_all_get_the_one_made(tmp_path: Path) -> None:
    """``serve`` starts every role at once on a fresh install: each finds no key file and
    makes one. One wins; the others read the winner's, whole (never an empty file)."""
    path = tmp_path / "claims-key"
    racers = 8
    everyone_looked = threading.Barrier(racers)

    def make() -> str:
        def may_create() -> None:
            everyone_looked.wait(timeout=10)  # all of them saw no file
            return None

        return install_secret(path, None, may_create=may_create)

    with ThreadPoolExecutor(max_workers=racers) as pool:
        keys = list(pool.map(lambda _: make(), range(racers)))
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert path.read_text().strip() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == ["claims-key"]  # no staging file left
