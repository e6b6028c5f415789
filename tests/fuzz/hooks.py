"""schemathesis hooks for the fuzz run (loaded by ``st`` through ``SCHEMATHESIS_HOOKS``).

The fuzz must not act on the credentials it runs with: one demotion of its admin, or one
key rotation of its partner's system, would turn the rest of the run into 401/403s and
hide everything behind them. A state-changing request whose path names one of those ids
(``STREAMFOLD_FUZZ_PROTECTED_IDS``, comma-separated) gets an unknown id instead.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis

PROTECTED = frozenset(filter(None, os.environ.get("STREAMFOLD_FUZZ_PROTECTED_IDS", "").split(",")))


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    if case.method.upper() in ("GET", "HEAD") or not case.path_parameters:
        return
    for name, value in list(case.path_parameters.items()):
        if str(value) in PROTECTED:
            case.path_parameters[name] = str(uuid.uuid4())
