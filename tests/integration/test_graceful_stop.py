"""SIGTERM is a graceful stop: exit 0, every consumer group left, a "stopped" line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from pipeline.projections import groups, registry
from tests.support import Endpoints, ServeProcess

pytestmark = pytest.mark.integration


def test_sigterm_stops_cleanly_and_leaves_the_groups(
    endpoints: Endpoints, server: ServeProcess, tmp_path: Path
) -> None:
    # Own consumer groups (app id), so the session's serve process is not disturbed; the
    # same install, so the same claims key.
    app_id = "sigterm-test"
    key = (server.settings.home / "claims-key").read_text().strip()
    proc = ServeProcess(endpoints, tmp_path, app_id=app_id, claims_key=key)
    proc.start()
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGTERM)
    try:
        code = proc.proc.wait(60)
    finally:
        proc.kill()  # a stop that hangs must not leave a second worker in the session
    log = proc.log_tail(200)
    assert code == 0, f"exit {code}; an un-handled SIGTERM exits 143\n{log}"
    assert "event='stopped'" in log, log

    # every group the install runs (pipeline/projections/groups.py), the projections at version 1
    roles = groups.by_role(app_id, registry.installed(), [])
    names = [group for by_group in roles.values() for group in by_group]
    admin = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap})
    for group, future in admin.describe_consumer_groups(names).items():
        described = future.result(timeout=30)
        # A member that did not leave would hold its partitions until its session expired.
        assert described.state == ConsumerGroupState.EMPTY, (group, described.state)
        assert not described.members, group
