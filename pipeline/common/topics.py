"""Topic names and their configuration: the event store's physical layout.

One ``<aggregate>.events`` topic per aggregate type is the event store (key = aggregate id,
kept forever); ``<aggregate>.commands`` feeds the command agent (key = aggregate id);
``<aggregate>.reservations`` is keyed by the unique value a command reserves: uniqueness
across aggregates is enforced by partitioning on that value
(``pipeline/write/agents/reservations.py``). Those names come from each aggregate's
declaration (``AggregateSpec``, listed in ``pipeline.domain.catalog``); the topics named
here are the ones no aggregate owns.
"""

from __future__ import annotations

from connectors.kafka import TopicSpec
from pipeline.domain.catalog import AGGREGATES

COMMAND_RESULTS = "command.results"
TRACKING_RAW = "tracking.raw"
"""SDK events as received (JSON, key = system id), before schema validation."""
TRACKING_EVENTS = "tracking.events"
"""Validated events (Avro TrackingEventRecorded, key = system id)."""
TRACKING_DLQ = "tracking.dlq"
"""Events that failed validation, with the reasons (JSON), and poison records."""

PROJECTIONS_CONTROL = "projections.control"
"""Requests to the projection runner (JSON), from ``streamfold projections``; one partition."""
PROJECTIONS_DLQ = "projections.dlq"
"""Records a projection could not decode or apply, with the reason in the headers."""
WEBHOOK_EVENTS = "webhook.events"
"""CloudEvents the inbound webhook accepted (JSON, key = event id), for the inbox."""

COMMAND_TOPICS: tuple[str, ...] = tuple(
    topic
    for spec in AGGREGATES
    for topic in (spec.commands_topic, spec.reservations_topic)
    if topic is not None
)
"""Read by the Faust command agents (consumer group = the app id)."""

EVENT_TOPICS: dict[str, str] = {spec.aggregate_type: spec.events_topic for spec in AGGREGATES}
"""aggregate_type -> its event topic (the event_log archive reads all of them)."""

_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
_WEEK = {"retention.ms": str(7 * 24 * 3600 * 1000), "cleanup.policy": "delete"}


def project_topics() -> list[TopicSpec]:
    """Every topic streamfold owns, with retention: events and dead letters forever, the
    rest one week.

    Faust's table changelogs are declared beside the aggregates
    (``pipeline.write.aggregates.changelog_topics``); both lists are created before Faust
    starts, so partition counts match (Faust refuses a table whose changelog and source
    differ).
    """
    forever = [*EVENT_TOPICS.values(), *(s.dlq_topic for s in AGGREGATES)]
    forever += [TRACKING_EVENTS, TRACKING_DLQ, PROJECTIONS_DLQ]
    week = [*COMMAND_TOPICS, COMMAND_RESULTS, TRACKING_RAW, WEBHOOK_EVENTS]
    return [
        *(TopicSpec(t, dict(_FOREVER)) for t in forever),
        *(TopicSpec(t, dict(_WEEK)) for t in week),
        TopicSpec(PROJECTIONS_CONTROL, dict(_WEEK), partitions=1),
    ]
