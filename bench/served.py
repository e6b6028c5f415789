"""A fresh stack for one bench run: local Kafka and Redis (``deploy.localstack``), and
``streamfold serve`` on them with an admin signed in; both stopped on exit."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deploy.localstack import LocalStack
from tests.support import Endpoints, ServeProcess, admin_token

__all__ = ["Served", "served"]


@dataclass(frozen=True)
class Served:
    """``stack``: Kafka and Redis; ``server``: the serve process; ``token``: the admin's
    bearer token; ``home``: the run's temporary directory."""

    stack: LocalStack
    server: ServeProcess
    token: str
    home: Path


@contextmanager
def served(prefix: str = "streamfold-bench-", **settings: str) -> Iterator[Served]:
    """Start a stack and ``streamfold serve`` with ``settings`` (``ServeProcess``
    overrides, e.g. ``processing_guarantee``) in a new temporary directory named
    ``prefix*``; stop both and remove the directory on exit, however the block ends (a
    failure prints the tail of the serve log first)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp)
        stack = LocalStack.start(home / "stack")
        server = ServeProcess(
            Endpoints(stack.kafka_bootstrap, stack.redis_url), home / "serve", **settings
        )
        (home / "serve").mkdir()
        try:
            server.start()
            server.create_admin()
            yield Served(stack, server, admin_token(server), home)
        except BaseException:
            print(server.log_tail(40), file=sys.stderr)  # what the stack said last
            raise
        finally:
            server.stop()
            stack.stop()
