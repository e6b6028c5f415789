"""Projections for platform engineers (admin JWT): list every version with its lag,
rebuild one into a new version, promote it, drop a retired one, pause and resume one
(README, "Replay and new projections"). The API never touches the read models: these are
requests on ``projections.control`` that the runner carries out (202 + Location); the
listing shows when they took effect."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from api.deps import AdminDep, ServicesDep
from api.models.projections import Promote, Rebuild
from api.problems import Problem
from pipeline.common import topics
from pipeline.projections import catalog, registry
from pipeline.projections.control import Action, Request
from pipeline.projections.overview import overview
from pipeline.projections.projection import Projection

router = APIRouter(prefix="/api/admin/projections", tags=["projections"])


def _installed(services: ServicesDep) -> tuple[Projection, ...]:
    return registry.installed(tuple(services.settings.projection_plugins))


async def _versions(services: ServicesDep, name: str | None = None) -> list[dict[str, Any]]:
    settings = services.settings
    installed = _installed(services)
    if name is not None and name not in {p.name for p in installed}:
        raise Problem(404, "unknown-projection", f"no projection named {name!r} is installed")
    return await overview(
        services.clickhouse, services.redis, settings.kafka_bootstrap, installed, name=name
    )


@router.get("")
async def list_projections(services: ServicesDep, _admin: AdminDep) -> JSONResponse:
    """Every version of every projection that is not dropped (``pipeline/projections/
    overview.py`` gives the fields): state, source topics, lag per partition, events/s,
    last error."""
    return JSONResponse({"projections": await _versions(services)})


@router.get("/{name}")
async def projection_versions(name: str, services: ServicesDep, _admin: AdminDep) -> JSONResponse:
    """The versions of projection ``name``; 404 ``unknown-projection`` if not installed."""
    return JSONResponse({"versions": await _versions(services, name)})


def _source(start: str) -> str:
    """``start`` as the runner's source string; Problem 422 ``bad-start`` if neither
    ``earliest``, an ISO-8601 time nor a JSON offsets object."""
    if start == "earliest":
        return start
    if start.lstrip().startswith("{"):
        try:
            offsets = orjson.loads(start)
            clean = {str(t): {str(int(p)): int(o) for p, o in parts.items()}
                     for t, parts in offsets.items()}  # fmt: skip
        except (ValueError, AttributeError, TypeError) as exc:
            detail = f"offsets are not {{topic: {{partition: offset}}}}: {exc}"
            raise Problem(422, "bad-start", detail) from None
        if any(o < 0 for parts in clean.values() for o in parts.values()):
            raise Problem(422, "bad-start", "an offset is negative")
        return "offsets:" + orjson.dumps(clean, option=orjson.OPT_SORT_KEYS).decode()
    try:
        at = datetime.fromisoformat(start)
    except ValueError:
        detail = "`from` is not earliest, an ISO-8601 time or offsets"
        raise Problem(422, "bad-start", detail) from None
    if at.tzinfo is None:
        raise Problem(422, "bad-start", "the time needs a UTC offset (e.g. Z or +00:00)")
    return "time:" + at.isoformat()


async def _send(services: ServicesDep, request: Request) -> None:
    await services.bus.producer.produce(
        topics.PROJECTIONS_CONTROL, request.encode(), key=request.projection.encode()
    )


def _accepted(name: str, version: int, action: Action, status: int = 202) -> JSONResponse:
    return JSONResponse(
        {"name": name, "version": version, "action": str(action)},
        status_code=status,
        headers={"Location": f"/api/admin/projections/{name}"},
    )


@router.post("/{name}/rebuild")
async def rebuild(
    name: str,
    services: ServicesDep,
    _admin: AdminDep,
    body: Annotated[Rebuild | None, Body()] = None,
) -> JSONResponse:
    """Build the next version of ``name`` from ``from`` (default: the start of its topics)
    beside the live one. 202 ``{name, version, action}`` + Location; 200 with the version
    already building (a rebuild resumes by itself). 404 ``unknown-projection``, 409
    ``not-rebuildable`` (a plugin that declares nothing to version, e.g. a Redis read
    model without key patterns; ``detail`` says why), 422 ``bad-start``."""
    versions = await _versions(services, name)
    building = next((v for v in versions if v["state"] in ("building", "promoting")), None)
    if building is not None:
        return _accepted(name, building["version"], Action.REBUILD, status=200)
    projection = next(p for p in _installed(services) if p.name == name)
    if not projection.rebuildable:
        raise Problem(409, "not-rebuildable", f"{name} cannot be rebuilt: {projection.refusal}")
    source = _source((body or Rebuild()).start)
    # dropped versions included: a number is never reused
    everything = await catalog.versions(services.clickhouse)
    number = max((v.version for v in everything if v.projection == name), default=0) + 1
    request = Request(app_id=services.settings.app_id, action=Action.REBUILD, projection=name,
                      version=number, source=source)  # fmt: skip
    await _send(services, request)
    return _accepted(name, number, Action.REBUILD)


@router.post("/{name}/promote")
async def promote(
    name: str,
    services: ServicesDep,
    _admin: AdminDep,
    body: Annotated[Promote | None, Body()] = None,
) -> JSONResponse:
    """Make the building version of ``name`` live (tables exchanged atomically) and retire
    the live one. 202 + Location; 409 ``nothing-to-promote`` (no version building), 409
    ``not-caught-up`` (``lag`` above ``max_lag``)."""
    versions = await _versions(services, name)
    building = next((v for v in versions if v["state"] == "building"), None)
    if building is None:
        raise Problem(409, "nothing-to-promote", f"{name} has no version building")
    max_lag = (body or Promote()).max_lag
    limit = services.settings.projection_promote_max_lag if max_lag is None else max_lag
    if building["lag"] is None or building["lag"] > limit:
        raise Problem(409, "not-caught-up", f"version {building['version']} is "
                      f"{building['lag']} records behind (at most {limit})",
                      lag=building["lag"], max_lag=limit)  # fmt: skip
    request = Request(app_id=services.settings.app_id, action=Action.PROMOTE, projection=name,
                      version=building["version"], max_lag=limit)  # fmt: skip
    await _send(services, request)
    return _accepted(name, building["version"], Action.PROMOTE)


@router.delete("/{name}/versions/{version}")
async def drop(name: str, version: int, services: ServicesDep, _admin: AdminDep) -> JSONResponse:
    """Drop a retired version (its tables) or cancel a building one. 202 + Location; 404
    ``unknown-version``; 409 ``live-version`` (promote another first)."""
    versions = {v["version"]: v for v in await _versions(services, name)}
    found = versions.get(version)
    if found is None:
        raise Problem(404, "unknown-version", f"{name} has no version {version}")
    if found["state"] in ("live", "promoting"):
        raise Problem(409, "live-version", f"version {version} of {name} is {found['state']}")
    request = Request(app_id=services.settings.app_id, action=Action.DROP, projection=name,
                      version=version)  # fmt: skip
    await _send(services, request)
    return _accepted(name, version, Action.DROP)


async def _pause(name: str, services: ServicesDep, action: Action) -> JSONResponse:
    """The live version of ``name`` (or the building one, if no live one) paused or
    resumed; 404 ``unknown-projection``."""
    versions = await _versions(services, name)
    target = next((v for v in versions if v["state"] == "live"), None) or next(
        (v for v in versions if v["state"] == "building"), None
    )
    if target is None:
        raise Problem(409, "nothing-running", f"{name} has no live or building version")
    request = Request(app_id=services.settings.app_id, action=action, projection=name,
                      version=target["version"])  # fmt: skip
    await _send(services, request)
    return _accepted(name, target["version"], action)


@router.post("/{name}/pause")
async def pause(name: str, services: ServicesDep, _admin: AdminDep) -> JSONResponse:
    """Stop applying events to the live version of ``name`` (seed 004): its checkpoint
    stays, its lag grows (``paused: true`` in the listing), nothing is lost; 202 +
    Location. The read model keeps answering with what it had."""
    return await _pause(name, services, Action.PAUSE)


@router.post("/{name}/resume")
async def resume(name: str, services: ServicesDep, _admin: AdminDep) -> JSONResponse:
    """Apply again from the checkpoint where the pause left it; 202 + Location."""
    return await _pause(name, services, Action.RESUME)
