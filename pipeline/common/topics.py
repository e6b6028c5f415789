"""Topic names and their configuration: the event store's physical layout.

One ``<aggregate>.events`` topic per aggregate type is the event store (key = aggregate id,
kept forever); ``<aggregate>.commands`` feeds the command agent (key = aggregate id);
``<aggregate>.reservations`` is keyed by the unique value a command reserves: uniqueness
across aggregates is enforced by partitioning on that value
(``pipeline/write/agents/reservations.py``).
"""

from __future__ import annotations

from connectors.kafka import TopicSpec

USER_COMMANDS = "users.commands"
USER_RESERVATIONS = "users.reservations"
USER_EVENTS = "users.events"
USER_DLQ = "users.dlq"
PARTNER_COMMANDS = "partners.commands"
PARTNER_EVENTS = "partners.events"
PARTNER_DLQ = "partners.dlq"
CHIRP_COMMANDS = "chirps.commands"
CHIRP_EVENTS = "chirps.events"
CHIRP_DLQ = "chirps.dlq"
FOLLOW_COMMANDS = "follows.commands"
FOLLOW_EVENTS = "follows.events"
"""Key = the pair's follow id: every event of one (follower, followee) pair, in order."""
FOLLOW_DLQ = "follows.dlq"
PROSPECT_COMMANDS = "prospects.commands"
PROSPECT_RESERVATIONS = "prospects.reservations"
PROSPECT_EVENTS = "prospects.events"
PROSPECT_DLQ = "prospects.dlq"
STUDENT_COMMANDS = "students.commands"
STUDENT_RESERVATIONS = "students.reservations"
STUDENT_EVENTS = "students.events"
STUDENT_DLQ = "students.dlq"
INSTRUCTOR_COMMANDS = "instructors.commands"
INSTRUCTOR_RESERVATIONS = "instructors.reservations"
INSTRUCTOR_EVENTS = "instructors.events"
INSTRUCTOR_DLQ = "instructors.dlq"
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

COMMAND_TOPICS = (
    USER_COMMANDS,
    USER_RESERVATIONS,
    PARTNER_COMMANDS,
    CHIRP_COMMANDS,
    FOLLOW_COMMANDS,
    PROSPECT_COMMANDS,
    PROSPECT_RESERVATIONS,
    STUDENT_COMMANDS,
    STUDENT_RESERVATIONS,
    INSTRUCTOR_COMMANDS,
    INSTRUCTOR_RESERVATIONS,
)
"""Read by the Faust command agents (consumer group = the app id)."""

EVENT_TOPICS: dict[str, str] = {
    "user": USER_EVENTS,
    "partner": PARTNER_EVENTS,
    "chirp": CHIRP_EVENTS,
    "follow": FOLLOW_EVENTS,
    "prospect": PROSPECT_EVENTS,
    "student": STUDENT_EVENTS,
    "instructor": INSTRUCTOR_EVENTS,
}
"""aggregate_type -> its event topic (the event_log archive reads all of them)."""

_FOREVER = {"retention.ms": "-1", "cleanup.policy": "delete"}
_WEEK_MS = str(7 * 24 * 3600 * 1000)


def project_topics() -> list[TopicSpec]:
    """Every topic streamfold owns, with retention: events forever, the rest one week.

    Faust's table changelogs are declared beside the aggregates
    (``pipeline.write.aggregates.changelog_topics``); both lists are created before Faust starts,
    so partition counts match (Faust refuses a table whose changelog and source differ).
    """
    week = {"retention.ms": _WEEK_MS, "cleanup.policy": "delete"}
    return [
        *(TopicSpec(t, dict(_FOREVER)) for t in EVENT_TOPICS.values()),
        TopicSpec(USER_COMMANDS, dict(week)),
        TopicSpec(USER_RESERVATIONS, dict(week)),
        TopicSpec(PARTNER_COMMANDS, dict(week)),
        TopicSpec(CHIRP_COMMANDS, dict(week)),
        TopicSpec(FOLLOW_COMMANDS, dict(week)),
        *(
            TopicSpec(t, dict(week))
            for t in (
                PROSPECT_COMMANDS,
                PROSPECT_RESERVATIONS,
                STUDENT_COMMANDS,
                STUDENT_RESERVATIONS,
                INSTRUCTOR_COMMANDS,
                INSTRUCTOR_RESERVATIONS,
            )
        ),
        TopicSpec(COMMAND_RESULTS, dict(week)),
        TopicSpec(USER_DLQ, dict(_FOREVER)),
        TopicSpec(PARTNER_DLQ, dict(_FOREVER)),
        TopicSpec(CHIRP_DLQ, dict(_FOREVER)),
        TopicSpec(FOLLOW_DLQ, dict(_FOREVER)),
        *(TopicSpec(t, dict(_FOREVER)) for t in (PROSPECT_DLQ, STUDENT_DLQ, INSTRUCTOR_DLQ)),
        TopicSpec(TRACKING_RAW, dict(week)),
        TopicSpec(TRACKING_EVENTS, dict(_FOREVER)),
        TopicSpec(TRACKING_DLQ, dict(_FOREVER)),
        TopicSpec(PROJECTIONS_CONTROL, dict(week), partitions=1),
        TopicSpec(PROJECTIONS_DLQ, dict(_FOREVER)),
    ]
