"""Tracking events sent by partner SDKs: the request and each event as they arrive
(``wire``: both wire shapes, the SDK rules, per-event refusals) and what is recorded of an
accepted one (``recorded``: ``TrackingEventRecorded`` and its envelope). Pure."""

from __future__ import annotations

from pipeline.domain.tracking.recorded import (
    RECORDED_AGGREGATE_TYPE,
    RECORDED_EVENT_TYPE,
    RECORDED_SCHEMA_VERSION,
    TRACKING_EVENT_NAMESPACE,
    event_id_for,
    recorded_data,
    recorded_envelope,
)
from pipeline.domain.tracking.wire import (
    EARLIEST_CLIENT_TIME,
    EARLIEST_TIMESTAMP,
    LATEST_CLIENT_TIME,
    MAX_EVENT_BYTES,
    MAX_FUTURE_SKEW,
    MAX_TEXT_LENGTH,
    MESSAGE_NAMESPACE,
    CallType,
    EventRejection,
    RejectReason,
    SdkRequest,
    TrackedEvent,
    canonical_json,
    decode_events,
    parse_sdk_event,
    read_request,
    rejection_record,
    time_range_problem,
)

__all__ = [
    "EARLIEST_CLIENT_TIME",
    "EARLIEST_TIMESTAMP",
    "LATEST_CLIENT_TIME",
    "MAX_EVENT_BYTES",
    "MAX_FUTURE_SKEW",
    "MAX_TEXT_LENGTH",
    "MESSAGE_NAMESPACE",
    "RECORDED_AGGREGATE_TYPE",
    "RECORDED_EVENT_TYPE",
    "RECORDED_SCHEMA_VERSION",
    "TRACKING_EVENT_NAMESPACE",
    "CallType",
    "EventRejection",
    "RejectReason",
    "SdkRequest",
    "TrackedEvent",
    "canonical_json",
    "decode_events",
    "event_id_for",
    "parse_sdk_event",
    "read_request",
    "recorded_data",
    "recorded_envelope",
    "rejection_record",
    "time_range_problem",
]
