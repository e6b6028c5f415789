"""deploy/grafana/streamfold.json draws only metrics that connectors/metrics.py defines."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.connectors.series import check

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "streamfold.json"


def test_every_query_names_a_defined_series_and_its_labels() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert panels
    for panel in panels:
        for target in panel["targets"]:
            check(target["expr"], panel["title"])
