"""A failed role exits even when its shutdown hangs (deploy/runtime.py: exit_within)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support import REPO


@pytest.mark.parametrize(
    ("script", "returncode"),
    [
        pytest.param(
            "from deploy.runtime import exit_within\nimport time\nexit_within(0.3)\ntime.sleep(30)",
            1,
            id="a-hanging-shutdown-is-cut-short",
        ),
        pytest.param(
            "from deploy.runtime import exit_within\nexit_within(30, code=3)",
            0,
            id="a-normal-exit-is-not-held-up",
        ),
    ],
)
def test_exit_within(script: str, returncode: int) -> None:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=20)
    assert done.returncode == returncode
    assert time.monotonic() - started < 15
