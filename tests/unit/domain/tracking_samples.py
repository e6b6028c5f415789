"""One partner system's tracking traffic: the sample the tracking decoder's tests share.

``parse`` and ``decode`` call ``parse_sdk_event`` and ``decode_events`` for the sample
system, received at ``RECEIVED``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.domain.tracking import (
    EventRejection,
    SdkRequest,
    TrackedEvent,
    decode_events,
    parse_sdk_event,
)

SYSTEM_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
PARTNER_ID = "0b9e4a56-2f4c-4d8e-9a51-3c1d7e2f8a90"
RECEIVED = datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)


def parse(raw: Any, raw_size: int = 10, **kw: Any) -> TrackedEvent | EventRejection:
    """``parse_sdk_event`` of one raw event, ``raw_size`` bytes on the wire."""
    return parse_sdk_event(
        raw,
        system_id=SYSTEM_ID,
        partner_id=PARTNER_ID,
        received_at=RECEIVED,
        raw_size=raw_size,
        **kw,
    )


def decode(request: SdkRequest) -> list[TrackedEvent | EventRejection]:
    """``decode_events`` of a whole request, in its order."""
    return decode_events(request, system_id=SYSTEM_ID, partner_id=PARTNER_ID, received_at=RECEIVED)
