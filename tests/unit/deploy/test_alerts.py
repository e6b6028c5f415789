"""deploy/prometheus/alerts.yml alerts only on metrics that connectors/metrics.py defines
(issue 25, seed 003: dead letters, consumer lag, a role down, live connections)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.connectors.series import check

ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"


def rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_names_defined_series_and_labels() -> None:
    for rule in rules():
        check(rule["expr"], rule["alert"])


def test_the_seed_s_four_alerts_are_there_and_each_says_what_to_do() -> None:
    found = {rule["alert"]: rule for rule in rules()}
    assert set(found) == {
        "StreamfoldDeadLetters", "StreamfoldConsumerLag", "StreamfoldRoleDown",
        "StreamfoldLiveConnections",
    }  # fmt: skip
    for name, rule in found.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], name
