"""Command status: where a 202 points. Results come from the Redis read model of
``command.results`` (kept 7 days)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, ServicesDep
from api.problems import Problem
from api.replies import outcome_body
from connectors.redis import get_command_result
from pipeline.domain.handling import CommandResult

router = APIRouter(prefix="/api/commands", tags=["commands"])


@router.get("/{command_id}")
async def command_status(
    command_id: str, services: ServicesDep, _who: PrincipalDep
) -> JSONResponse:
    """200 with the result (accepted or rejected, as ``status``); 404 while none is known
    (pending, or an unknown id), with ``Retry-After: 1``."""
    stored = await get_command_result(services.redis, command_id)
    if stored is None:
        raise Problem(
            404, "no-result", f"no result for command {command_id} yet",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    result = CommandResult.from_dict(stored)
    body = {**outcome_body(result), "status": result.status}
    if result.status == "rejected":
        body |= {"reason": result.reason, "message": result.message, "field": result.field}
    return JSONResponse(body)
