"""deploy/grafana/streamfold.json draws only metrics that connectors/metrics.py defines."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from connectors import metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "streamfold.json"


def defined() -> dict[str, set[str]]:
    """Series names each metric exposes -> its label names."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names[f"{value._name}_total"] = set(value._labelnames)
        elif isinstance(value, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                names[value._name + suffix] = set(value._labelnames) | {"le"}
        elif isinstance(value, Gauge):
            names[value._name] = set(value._labelnames)
    return names


def test_every_query_names_a_defined_series_and_its_labels() -> None:
    series = defined()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert panels
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"]
            used = re.findall(r"streamfold_[a-z_]+", expr)
            assert used, expr
            for name in used:
                assert name in series, f"{panel['title']}: {name} is not a metric"
            labels = set(re.findall(r"\b(?:by|without) \(([^)]*)\)", expr))
            for group in labels:
                for label in (x.strip() for x in group.split(",")):
                    assert any(label in series[n] for n in used), f"{panel['title']}: {label}"
