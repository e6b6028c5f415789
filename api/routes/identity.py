"""Identity (seed 003, issue 11): prospects, and the students and instructors they
convert into. Commands go to Kafka; reads come from the ``identity`` read models.

Who may do what: admins and teachers write and read everything; a student reads only
their own student record (the one with their account's e-mail) and nothing else.
Command routes answer as the admin user routes do (201/200, 409/404/422 problem+json, or
202 + Location when the result is late) and once the read model shows the change, so
the next GET sees it. A merge and a conversion take more than one command (a process
manager sends the later ones, ``pipeline/domain/identity/reactions.py``): their routes
wait for the last one.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import AdminDep, IdempotencyKey, PrincipalDep, Services, ServicesDep, StaffDep
from api.models.identity import (
    COMMAND_FORMS,
    CommandForm,
    ConvertRequest,
    Enrollment,
    InstructorDeactivate,
    InstructorPage,
    InstructorPublic,
    InstructorUpdate,
    MergeRequest,
    PersonCreate,
    ProspectCreate,
    ProspectPage,
    ProspectPublic,
    ProspectUpdate,
    StudentPage,
    StudentPublic,
    StudentUpdate,
)
from api.problems import Problem
from api.replies import (
    command_fields,
    outcome_body,
    pending,
    raise_rejection,
    run_command,
    until_applied,
)
from api.security import Principal
from pipeline.domain.handling import CommandResult
from pipeline.domain.identity import instructors, prospects, students
from pipeline.domain.identity.reactions import login_command_id, reaction_id
from pipeline.projections import identity, users
from pipeline.projections.identity import INSTRUCTORS, PROSPECTS, STUDENTS, Model

router = APIRouter(tags=["identity"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued; the result will be at the Location URL."},
    403: {"description": "The caller's role may not do this (problem+json)."},
    404: {"description": "No such record (problem+json)."},
    409: {"description": "Conflict: duplicate e-mail, merged, merging, version (problem+json)."},
    422: {"description": "Invalid input (problem+json)."},
}
Page = Annotated[int, Query(ge=1)]
PageSize = Annotated[int, Query(ge=1, le=200)]


def _read_model(services: Services, model: Model) -> Any:
    return partial(identity.version, services.clickhouse, model)


async def _run(
    services: Services, command: Any, model: Model, status: int = 200, location: str | None = None
) -> JSONResponse:
    return await run_command(
        services, command, success_status=status, read_model=_read_model(services, model),
        location=location,
    )  # fmt: skip


async def _update(
    services: Services,
    who: Principal,
    key: str | None,
    command_type: Any,
    aggregate_id: str,
    body: Any,
    model: Model,
) -> JSONResponse:
    """Send ``command_type`` with the fields ``body`` gives (its ``expected_version`` as
    the optimistic check) and answer once ``model`` shows the change."""
    fields = body.model_dump(exclude_none=True, exclude={"expected_version"})
    envelope = command_fields(key, aggregate_id, who.user_id, body.expected_version)
    return await _run(services, command_type(**envelope, **fields), model)


def _page(found: tuple[list[Any], int], page: int, page_size: int) -> dict[str, Any]:
    rows, total = found
    return {"items": rows, "total": total, "page": page, "page_size": page_size}


def _then(result: CommandResult) -> str | None:
    """The id of the command the process manager sends after ``result``'s (only) event."""
    return reaction_id(result.event_ids[0]) if result.event_ids else None


# -- prospects ----------------------------------------------------------------------------


@router.post("/api/prospects", status_code=201, responses=_RESPONSES)
async def create_prospect(
    body: ProspectCreate, services: ServicesDep, who: StaffDep, key: IdempotencyKey = None
) -> JSONResponse:
    """CreateProspect: 201 with the new id; 409 ``duplicate-email`` (unique among
    prospects, merged ones included); 422 invalid."""
    command = prospects.CreateProspect(
        **command_fields(key, "", who.user_id), **body.model_dump(exclude_none=True)
    )
    return await _run(services, command, PROSPECTS, 201, "/api/prospects/{id}")


@router.put("/api/prospects/{prospect_id}", responses=_RESPONSES)
async def update_prospect(
    prospect_id: str,
    body: ProspectUpdate,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UpdateProspect: the fields given. 409 ``deleted`` for a merged prospect,
    ``invalid-state`` during a merge, ``duplicate-email``."""
    return await _update(services, who, key, prospects.UpdateProspect, prospect_id, body, PROSPECTS)


@router.post("/api/prospects/{prospect_id}/merge", responses=_RESPONSES)
async def merge_prospect(
    prospect_id: str,
    body: MergeRequest,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """MergeProspect: this prospect (a second record of one person) into ``into``, which
    keeps the union of both. 200 ``{"status": "merged"}`` once done; 404 for an unknown
    prospect; 409 ``deleted`` if this one is merged already, ``invalid-state`` while it
    is merging, ``merge-refused`` when ``into`` is merged or merging (the refusal is
    decided by ``into`` itself, race-free: two merges never form a cycle)."""
    if await identity.prospect(services.clickhouse, body.into) is None:
        raise Problem(404, "not-found", f"no prospect {body.into}", field="into")
    command = prospects.MergeProspect(
        **command_fields(key, prospect_id, who.user_id), into_id=body.into
    )
    first, _, last = await services.bus.submit_chain(command, _then, 2)
    if first is None:
        return pending(command)
    raise_rejection(first)
    if last is None and not first.duplicate:
        return pending(command)
    if last is not None:
        await until_applied(services, last, _read_model(services, PROSPECTS))
    row = await identity.prospect(services.clickhouse, prospect_id)
    if row is None or row["status"] == "merging":
        return pending(command)
    if row["status"] != "merged" or row["into_id"] != body.into:
        raise Problem(
            409,
            "merge-refused",
            f"prospect {body.into} is merged or being merged: merge into its survivor",
            command_id=command.command_id,
            id=prospect_id,
        )
    answer = outcome_body(last or first)
    return JSONResponse({**answer, "status": "merged", "into": body.into})


@router.post("/api/prospects/{prospect_id}/convert", status_code=201, responses=_RESPONSES)
async def convert_prospect(
    prospect_id: str,
    body: ConvertRequest,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """ConvertProspect into a student or an instructor (once per role): 201 with the new
    record's id and ``Location``; 409 ``already-exists`` for a second conversion,
    ``deleted``/``invalid-state`` for a merged or merging prospect, ``duplicate-email``
    when a student (instructor) already has this e-mail (the conversion is then undone:
    the prospect may convert again once the e-mail is free). ``login_id``: the person's
    login, made by the conversion; null when an account already has the e-mail (it is
    theirs)."""
    command = prospects.ConvertProspect(
        **command_fields(key, prospect_id, who.user_id), role=body.role
    )
    first, made = await services.bus.submit_chain(command, _then, 1)
    if first is None:
        return pending(command)
    raise_rejection(first)
    model = STUDENTS if body.role == "student" else INSTRUCTORS
    person_id = prospects.person_id(prospect_id, body.role)
    location = {"Location": f"/api/{body.role}s/{person_id}"}
    if made is None and first.duplicate:
        if await identity.version(services.clickhouse, model, person_id):
            return JSONResponse({**outcome_body(first), "id": person_id}, 201, location)
    if made is None:
        return pending(command)
    raise_rejection(made)
    await until_applied(services, made, _read_model(services, model))
    login = await _login(services, first)
    return JSONResponse({**outcome_body(made), "role": body.role, "login_id": login}, 201, location)


async def _login(services: Services, converted: CommandResult) -> str | None:
    """The login the conversion made, once the users read model has it (so a one-time
    link can be issued at once); None when an account already had the e-mail (that
    account is the person's) or the login's result did not come in time."""
    result = await services.bus.result_of(login_command_id(converted.event_ids[0]))
    if result is None or result.status != "accepted":
        return None
    await until_applied(services, result, partial(users.version, services.clickhouse))
    return result.aggregate_id


@router.get("/api/prospects/{prospect_id}", response_model=ProspectPublic)
async def get_prospect(prospect_id: str, services: ServicesDep, _who: StaffDep) -> Any:
    """The prospect as stored: a merged one has ``status: merged`` and ``into_id``."""
    row = await identity.prospect(services.clickhouse, prospect_id)
    if row is None:
        raise Problem(404, "not-found", f"no prospect {prospect_id}")
    return row


@router.get("/api/prospects", response_model=ProspectPage)
async def list_prospects(
    services: ServicesDep,
    _who: StaffDep,
    search: Annotated[str | None, Query(max_length=200)] = None,
    page: Page = 1,
    page_size: PageSize = 20,
) -> Any:
    """Prospects by name, merged ones left out; ``search``: a prefix of a name, an e-mail
    or a phone number (digits, with or without the country code). A merged prospect that
    matches is shown as its survivor."""
    found = await identity.search(
        services.clickhouse, search, limit=page_size, offset=(page - 1) * page_size
    )
    return _page(found, page, page_size)


@router.get("/api/identity/commands", response_model=list[CommandForm])
async def command_forms(_who: PrincipalDep) -> Any:
    """The commands the identity routes take, each with its body's JSON Schema: what
    ``/identity`` builds its forms from."""
    return [
        {
            "name": name,
            "method": method,
            "path": path,
            "needs_id": "{id}" in path,
            "schema": model.model_json_schema(),
        }
        for name, method, path, model in COMMAND_FORMS
    ]


# -- students and instructors ---------------------------------------------------------------


async def _own_email(services: Services, who: Principal) -> str | None:
    """None for staff (they see everyone); a student's account e-mail otherwise.
    Raises 403 for any other role."""
    if who.role in ("admin", "teacher"):
        return None
    if who.role != "student":
        raise Problem(403, "forbidden", "this route needs the admin, teacher or student role")
    row = await users.user(services.clickhouse, who.user_id)
    return "" if row is None else str(row["email"])


async def _person(services: Services, who: Principal, model: Model, person_id: str) -> Any:
    own = await _own_email(services, who)
    row = await identity.person(services.clickhouse, model, person_id)
    if row is None or (own is not None and row["email"] != own):
        raise Problem(404, "not-found", f"no {model.aggregate_type} {person_id}")
    return row


async def _course(
    services: Services,
    who: Principal,
    key: str | None,
    command_type: Any,
    student_id: str,
    body: Enrollment,
) -> JSONResponse:
    command = command_type(**command_fields(key, student_id, who.user_id), course=body.course)
    return await _run(services, command, STUDENTS)


@router.get("/api/students/{student_id}", response_model=StudentPublic)
async def get_student(student_id: str, services: ServicesDep, who: PrincipalDep) -> Any:
    """A student; a student caller sees only themselves (anyone else: 404)."""
    return await _person(services, who, STUDENTS, student_id)


@router.get("/api/students", response_model=StudentPage)
async def list_students(
    services: ServicesDep, who: PrincipalDep, page: Page = 1, page_size: PageSize = 20
) -> Any:
    """Students by name; a student caller gets only themselves."""
    own = await _own_email(services, who)
    found = await identity.people(
        services.clickhouse, STUDENTS, email=own, limit=page_size, offset=(page - 1) * page_size
    )
    return _page(found, page, page_size)


@router.put("/api/students/{student_id}", responses=_RESPONSES)
async def update_student(
    student_id: str,
    body: StudentUpdate,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UpdateStudent: the contact fields given; 409 ``duplicate-email``."""
    return await _update(services, who, key, students.UpdateStudent, student_id, body, STUDENTS)


@router.post("/api/students/{student_id}/enrollments", responses=_RESPONSES)
async def enroll_student(
    student_id: str,
    body: Enrollment,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """EnrollStudent in ``course``; 409 ``already-exists`` if enrolled."""
    return await _course(services, who, key, students.EnrollStudent, student_id, body)


@router.post("/api/students/{student_id}/withdrawals", responses=_RESPONSES)
async def withdraw_student(
    student_id: str,
    body: Enrollment,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """WithdrawStudent from ``course``; 404 ``not-found`` if not enrolled."""
    return await _course(services, who, key, students.WithdrawStudent, student_id, body)


@router.get("/api/instructors/{instructor_id}", response_model=InstructorPublic)
async def get_instructor(instructor_id: str, services: ServicesDep, _who: StaffDep) -> Any:
    row = await identity.person(services.clickhouse, INSTRUCTORS, instructor_id)
    if row is None:
        raise Problem(404, "not-found", f"no instructor {instructor_id}")
    return row


@router.get("/api/instructors", response_model=InstructorPage)
async def list_instructors(
    services: ServicesDep, _who: StaffDep, page: Page = 1, page_size: PageSize = 20
) -> Any:
    found = await identity.people(
        services.clickhouse, INSTRUCTORS, email=None, limit=page_size,
        offset=(page - 1) * page_size,
    )  # fmt: skip
    return _page(found, page, page_size)


@router.put("/api/instructors/{instructor_id}", responses=_RESPONSES)
async def update_instructor(
    instructor_id: str,
    body: InstructorUpdate,
    services: ServicesDep,
    who: StaffDep,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """UpdateInstructor: the contact fields given; 409 ``invalid-state`` if deactivated."""
    return await _update(
        services, who, key, instructors.UpdateInstructor, instructor_id, body, INSTRUCTORS
    )


@router.post("/api/instructors/{instructor_id}/deactivate", responses=_RESPONSES)
async def deactivate_instructor(
    instructor_id: str,
    services: ServicesDep,
    who: StaffDep,
    body: InstructorDeactivate | None = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """DeactivateInstructor; 409 ``invalid-state`` if already deactivated."""
    body = body or InstructorDeactivate()
    command = instructors.DeactivateInstructor(
        **command_fields(key, instructor_id, who.user_id), reason=body.reason
    )
    return await _run(services, command, INSTRUCTORS)


@router.post("/api/instructors/{instructor_id}/reactivate", responses=_RESPONSES)
async def reactivate_instructor(
    instructor_id: str, services: ServicesDep, who: StaffDep, key: IdempotencyKey = None
) -> JSONResponse:
    """ReactivateInstructor (seed 003); 409 ``invalid-state`` if active."""
    command = instructors.ReactivateInstructor(**command_fields(key, instructor_id, who.user_id))
    return await _run(services, command, INSTRUCTORS)


async def _create_person(
    services: Services,
    who: Principal,
    key: str | None,
    command_type: Any,
    body: PersonCreate,
    model: Model,
) -> JSONResponse:
    fields = body.model_dump(exclude_none=True)
    command = command_type(**command_fields(key, "", who.user_id), **fields)
    path = f"/api/{model.aggregate_type}s/{{id}}"
    return await _run(services, command, model, 201, path)


@router.post("/api/students", status_code=201, responses=_RESPONSES)
async def create_student(
    body: PersonCreate, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    """CreateStudent directly, with no prospect behind it (seed 003; admins): 201 with the
    new id and Location; 409 ``duplicate-email`` (unique among students); 422 invalid."""
    return await _create_person(services, admin, key, students.CreateStudent, body, STUDENTS)


@router.post("/api/instructors", status_code=201, responses=_RESPONSES)
async def create_instructor(
    body: PersonCreate, services: ServicesDep, admin: AdminDep, key: IdempotencyKey = None
) -> JSONResponse:
    """CreateInstructor directly (seed 003; admins): as ``POST /api/students``."""
    return await _create_person(
        services, admin, key, instructors.CreateInstructor, body, INSTRUCTORS
    )
