"""A role leaves what it loaded out of later collections and collects its young generation
less often (deploy/runtime.py: settle_garbage_collector); cycles made afterwards are
still collected."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

SCRIPT = """
import gc, weakref
from deploy.runtime import GC_YOUNG_THRESHOLD, settle_garbage_collector
settle_garbage_collector()
assert gc.get_freeze_count() > 1000, gc.get_freeze_count()
assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
class Node: pass
a, b = Node(), Node()
a.other, b.other = b, a
alive = weakref.ref(a)
del a, b
gc.collect()
assert alive() is None, "a cycle made after settling was not collected"
"""


def test_settled_collector_freezes_what_is_loaded_and_still_collects_cycles() -> None:
    # its own process: freezing is process-wide and would reach into the test session
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, timeout=60,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
