"""What every benchmark here shares: percentiles and the results file."""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "local"
"""Where new runs go: git-ignored, so ``make bench`` leaves ``git status`` clean. The runs
docs/benchmarks.md quotes are committed one level up, in ``bench/results/``."""


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50/p95/p99 of ``samples_ms`` (milliseconds), rounded to 0.1; NaN when empty."""
    if len(samples_ms) < 2:
        value = round(samples_ms[0], 1) if samples_ms else float("nan")
        return {"p50": value, "p95": value, "p99": value}
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50": round(q[49], 1), "p95": round(q[94], 1), "p99": round(q[98], 1)}


def write_results(
    name: str, args: argparse.Namespace, runs: list[Any], medians: dict[str, Any]
) -> Path:
    """``bench/results/local/<name>-<utc stamp>.json`` with the arguments, every run, the
    medians."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "runs": runs, "medians": medians}, indent=1))
    return path
