"""The series names and labels ``connectors/metrics.py`` exposes: what a dashboard or an
alert may name (``test_grafana_dashboard.py``, ``tests/unit/deploy/test_alerts.py``)."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

from connectors import metrics


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


def check(expr: str, where: str) -> None:
    """Raises AssertionError unless ``expr`` (PromQL) names only defined series, and every
    label it groups by belongs to one of them."""
    series = defined()
    used = re.findall(r"streamfold_[a-z_]+", expr)
    assert used, f"{where}: names no streamfold series: {expr}"
    for name in used:
        assert name in series, f"{where}: {name} is not a metric"
    for group in re.findall(r"\b(?:by|without) \(([^)]*)\)", expr):
        for label in (x.strip() for x in group.split(",")):
            assert any(label in series[n] for n in used), f"{where}: no series has {label}"
