"""Tracking analytics read from ClickHouse: raw events, stats, time series, funnels,
rejections and the data's time bounds.

Every route takes the caller's scope: an admin JWT sees every system, an API key the
systems of its partner; asking for a system outside the scope is a 403. Time ranges are
half-open ``[start, end)`` in ISO-8601 (naive = UTC); ``start >= end`` is a 422.
A missing bound is open (all time on that side) for events, stats and funnels; a time
series has a bucket limit, so it fills a missing bound from the newest data instead
(``analytics_sql.series_range``). A query parameter a route does not declare (``from``,
``to``, a typo) is a 422 ``unknown-parameter``, checked once for the whole router by
``known_params_only``. The SQL lives in ``pipeline.projections.tracking.queries``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import StringConstraints

from api.deps import ScopeDep, ServicesDep
from api.models.analytics import (
    Bounds,
    EventPage,
    EventStat,
    Funnel,
    FunnelStep,
    Rejection,
    RejectionPage,
    Stats,
    StatsTotals,
    TimeseriesPoint,
    TrackedEvent,
)
from api.problems import Problem
from pipeline.projections.tracking import queries as q


def check_known_params(given: Iterable[str], accepted: Sequence[str]) -> None:
    """Raises: Problem 422 ``unknown-parameter`` when ``given`` holds a name not in
    ``accepted``; the detail names both, and ``unknown``/``accepted`` carry the lists.

    Why: an ignored ``from``/``to`` answers for a range the caller did not ask for, and
    the answer looks right."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise Problem(
            422, "unknown-parameter",
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"this route accepts: {', '.join(accepted) or 'none'}",
            unknown=unknown, accepted=list(accepted),
        )  # fmt: skip


def query_param_names(dependant: Dependant) -> list[str]:
    """The query parameter names (aliases) of a route and its dependencies, in order."""
    names = [field.alias for field in dependant.query_params]
    for sub in dependant.dependencies:
        names += [name for name in query_param_names(sub) if name not in names]
    return names


async def known_params_only(request: Request, _scope: ScopeDep) -> None:
    """Router dependency: refuse query parameters the matched route does not declare.

    Depends on the scope so that a caller without credentials gets the 401 first, as for
    any other invalid parameter (FastAPI caches the scope: it is resolved once)."""
    route = request.scope["route"]  # set by Starlette's router when the path matched
    check_known_params(request.query_params.keys(), query_param_names(route.dependant))


router = APIRouter(
    prefix="/v1/analytics", tags=["analytics"], dependencies=[Depends(known_params_only)]
)

EventName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
SystemParam = Annotated[
    str | None, Query(max_length=200, description="One system id; default: all in scope.")
]
StartParam = Annotated[
    datetime | None, Query(description="Inclusive lower bound (ISO-8601; naive = UTC).")
]
EndParam = Annotated[
    datetime | None, Query(description="Exclusive upper bound (ISO-8601; naive = UTC).")
]
CursorParam = Annotated[
    str | None, Query(max_length=500, description="The next_cursor of the previous page.")
]
EventParam = Annotated[str | None, Query(min_length=1, max_length=200, description="Event name.")]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad cursor (problem+json)."},
    401: {"description": "No or bad credentials (problem+json)."},
    403: {"description": "System outside the caller's scope (problem+json)."},
    422: {"description": "Invalid or unknown parameters (problem+json)."},
}


def _json_object(text: str) -> dict[str, Any]:
    # Ingestion stores objects; an empty column (older rows) reads as no properties.
    return orjson.loads(text) if text else {}


@router.get("/events", response_model=EventPage, responses=_RESPONSES)
async def list_events(
    services: ServicesDep,
    scope: ScopeDep,
    system: SystemParam = None,
    event: EventParam = None,
    start: StartParam = None,
    end: EndParam = None,
    user_id: Annotated[str | None, Query(max_length=200)] = None,
    anonymous_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: CursorParam = None,
) -> EventPage:
    """Raw tracked events ordered by ``(timestamp, event_id)``, keyset-paginated.

    Without ``start``/``end``: all time, oldest first (a page reads at most ``limit`` + 1
    rows, so the open range costs no more than a bounded one).
    400 ``bad-cursor`` for a cursor this API did not hand out; 422 when start >= end.
    """
    q.check_range(start, end)
    after = q.decode_cursor(cursor) if cursor is not None else None
    sql, params = q.events_query(
        scope.restrict(system), event=event, start=start, end=end, user_id=user_id,
        anonymous_id=anonymous_id, after=after, limit=limit,
    )  # fmt: skip
    rows = await services.clickhouse.query(sql, params)
    page = rows[:limit]
    items = [
        TrackedEvent(
            **{
                **r,
                "properties": _json_object(r["properties"]),
                "context": _json_object(r["context"]),
            }
        )
        for r in page
    ]
    # events_query fetched one row past the page: its presence is the "more" signal.
    next_cursor = (
        q.encode_cursor(page[-1]["timestamp"], page[-1]["event_id"]) if len(rows) > limit else None
    )
    return EventPage(items=items, next_cursor=next_cursor)


@router.get("/stats", response_model=Stats, responses=_RESPONSES)
async def stats(
    services: ServicesDep,
    scope: ScopeDep,
    system: SystemParam = None,
    start: StartParam = None,
    end: EndParam = None,
) -> Stats:
    """Events and exact unique users per event name, plus totals (with the first and last
    event timestamps, so a client can find where historical data ends).

    Without ``start``/``end``: all time (one pass over the scope's rows; at the demo's
    ~41,000 events that is milliseconds)."""
    q.check_range(start, end)
    systems = scope.restrict(system)
    rows, totals = await asyncio.gather(
        services.clickhouse.query(*q.stats_query(systems, start, end)),
        services.clickhouse.query(*q.stats_totals_query(systems, start, end)),
    )
    return Stats(items=[EventStat(**r) for r in rows], totals=StatsTotals(**totals[0]))


@router.get("/timeseries", response_model=list[TimeseriesPoint], responses=_RESPONSES)
async def timeseries(
    services: ServicesDep,
    scope: ScopeDep,
    system: SystemParam = None,
    event: EventParam = None,
    start: StartParam = None,
    end: EndParam = None,
    bucket: Annotated[q.Bucket, Query(description="Bucket width.")] = "hour",
) -> list[TimeseriesPoint]:
    """Events and unique users per bucket from the per-minute rollup; empty buckets are
    absent. A minute counts when its start is in ``[start, end)``.

    Default range (``analytics_sql.series_range``): without ``start`` and ``end``, the last
    24 h of minutes, 48 hours, 60 days or 52 weeks up to the newest event in scope (not up
    to now: the demo data is from 1995 and 2015); with only ``end``, as many buckets up to
    ``end``; with only ``start``, up to the newest event.

    422 when start >= end, or when the range would exceed 10,000 buckets.
    """
    q.check_range(start, end)
    systems = scope.restrict(system)
    newest = None
    if end is None:
        rows = await services.clickhouse.query(
            *q.newest_minute_query(systems, event=event, start=start)
        )
        newest = rows[0]["newest"]
    window = q.series_range(bucket, start, end, newest)
    if window is None:
        return []
    first, stop = window
    q.check_buckets(first, stop, bucket)
    sql, params = q.timeseries_query(systems, bucket, event=event, start=first, end=stop)
    return [TimeseriesPoint(**r) for r in await services.clickhouse.query(sql, params)]


@router.get("/funnel", response_model=Funnel, responses=_RESPONSES)
async def funnel(
    services: ServicesDep,
    scope: ScopeDep,
    system: Annotated[str, Query(min_length=1, max_length=200)],
    steps: Annotated[
        list[EventName],
        Query(min_length=2, max_length=10, description="Event names in order: steps=a&steps=b"),
    ],
    window_s: Annotated[
        int, Query(ge=1, le=30 * 86_400, description="Seconds from the first step.")
    ] = 86_400,
    start: StartParam = None,
    end: EndParam = None,
) -> Funnel:
    """How many distinct ids did the steps in order, each within ``window_s`` seconds of
    their first step (ClickHouse ``windowFunnel``, whole seconds). Step k counts the ids
    that got at least that far, so the counts never increase.

    Without ``start``/``end``: all time (only rows of the system and the step names are
    read)."""
    q.check_range(start, end)
    sql, params = q.funnel_query(scope.restrict(system), steps, window_s, start=start, end=end)
    levels = await services.clickhouse.query(sql, params)
    return Funnel(steps=[FunnelStep(**s) for s in q.funnel_steps(steps, levels)])


@router.get("/rejections", response_model=RejectionPage, responses=_RESPONSES)
async def rejections(
    services: ServicesDep,
    scope: ScopeDep,
    system: SystemParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> RejectionPage:
    """The latest events ingestion refused, with its reasons, and how many there are."""
    systems = scope.restrict(system)
    rows, total = await asyncio.gather(
        services.clickhouse.query(*q.rejections_query(systems, limit)),
        services.clickhouse.query(*q.rejections_total_query(systems)),
    )
    return RejectionPage(items=[Rejection(**r) for r in rows], total=total[0]["total"])


@router.get("/bounds", response_model=Bounds, responses=_RESPONSES)
async def bounds(services: ServicesDep, scope: ScopeDep, system: SystemParam = None) -> Bounds:
    """How many events are in scope and the timestamps of the oldest and newest: where a
    client (the dashboard) should put a range that contains the data."""
    rows = await services.clickhouse.query(*q.bounds_query(scope.restrict(system)))
    return Bounds(**rows[0])
