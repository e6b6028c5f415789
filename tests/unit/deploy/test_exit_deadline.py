"""A failed role exits even when its shutdown hangs (deploy/runtime.py: exit_within)."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.support import REPO


def test_a_hanging_shutdown_is_cut_short() -> None:
    script = "from deploy.runtime import exit_within\nimport time\nexit_within(0.3)\ntime.sleep(30)"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=20)
    assert done.returncode == 1
    assert time.monotonic() - started < 15


def test_a_normal_exit_is_not_held_up() -> None:
    script = "from deploy.runtime import exit_within\nexit_within(30, code=3)"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=20)
    assert done.returncode == 0
    assert time.monotonic() - started < 15
