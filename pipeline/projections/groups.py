"""Every consumer group an install runs, by the role whose processes are its members: the
one map that ``/readyz`` (stalls and lag), ``streamfold status`` (lag per group) and the
graceful-stop test read.

- commands: the Faust command agents, one group named by the app id;
- validation: ``<app id>-tracking-validation`` on ``tracking.raw``;
- sinks: the projection runner's control consumer and one group per running projection
  version (``pipeline.projections.runner.consumer_groups``), among them the tracking sinks
  (whose version 1 keeps ``<app id>-tracking-sink`` and ``-rejections``).
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.common import topics
from pipeline.projections.catalog import Version
from pipeline.projections.projection import Projection
from pipeline.projections.runner import consumer_groups, control_group


def validation_group(app_id: str) -> str:
    """The group of the validation consumers (``pipeline/edge/validation.py``)."""
    return f"{app_id}-tracking-validation"


def by_role(
    app_id: str, projections: Iterable[Projection], versions: Iterable[Version]
) -> dict[str, dict[str, list[str]]]:
    """role -> {consumer group -> the topics it reads}, for every group this install runs
    (``versions``: the projection catalog; projections it does not list count at v1)."""
    return {
        "commands": {app_id: list(topics.COMMAND_TOPICS)},
        "validation": {validation_group(app_id): [topics.TRACKING_RAW]},
        "sinks": {
            control_group(app_id): [topics.PROJECTIONS_CONTROL],
            **consumer_groups(app_id, projections, versions),
        },
    }
