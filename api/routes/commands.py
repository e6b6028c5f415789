"""Command status: where a 202 points. Results come from the Redis read model of
``command.results`` (kept 7 days)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, ServicesDep
from api.problems import Problem
from api.replies import outcome_body
from api.security import Principal
from connectors.redis import get_command_result
from pipeline.domain.handling import CommandResult

router = APIRouter(prefix="/api/commands", tags=["commands"])


def may_read(principal: Principal, result: CommandResult) -> bool:
    """Whether ``principal`` may see ``result``: an admin (by the role the read model shows
    now), or the user who issued the command (``result.actor``). A tool's command (no
    actor) and a result stored before results carried their actor: admins only."""
    if principal.role == "admin":
        return True
    return result.actor is not None and result.actor == principal.user_id


@router.get("/{command_id}")
async def command_status(command_id: str, services: ServicesDep, who: PrincipalDep) -> JSONResponse:
    """The result of command ``command_id``, for the user who issued it or an admin.

    200 with the result (accepted or rejected, as ``status``); 404 problem+json
    ``no-result`` with ``Retry-After: 1`` while none is known (pending, or an unknown id)
    and, alike, for a caller who may not read it: a 403 would tell anyone holding a token
    that the command exists."""
    stored = await get_command_result(services.redis, command_id)
    result = None if stored is None else CommandResult.from_dict(stored)
    if result is None or not may_read(who, result):
        raise Problem(
            404, "no-result", f"no result for command {command_id} yet",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    body = {**outcome_body(result), "status": result.status}
    if result.status == "rejected":
        body |= {"reason": result.reason, "message": result.message, "field": result.field}
    return JSONResponse(body)
