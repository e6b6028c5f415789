"""Request and response bodies of the identity routes (``api/routes/identity.py``).

Requests validate with the domain's own parsers, so a bad e-mail, phone or course code
is a 422 before anything reaches Kafka; decide checks again. ``COMMAND_FORMS`` is what
the ``/identity`` page builds its forms from (``GET /api/identity/commands``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.models.common import STRICT, domain_value, email_value, name_value
from pipeline.domain.identity import profile
from pipeline.domain.identity.students import course_code

_NAME = {"min_length": 1, "max_length": 100}


def _optional(parse: Any, v: str | None) -> str | None:
    return None if v is None else domain_value(parse, v)


class _Contact(BaseModel):
    """Contact fields of an update: each optional (absent: unchanged); a blank phone
    removes it."""

    model_config = STRICT
    first_name: str | None = Field(default=None, **_NAME)
    last_name: str | None = Field(default=None, **_NAME)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40, description="Any common format.")
    expected_version: int | None = Field(default=None, ge=0)

    _name = field_validator("first_name", "last_name")(name_value)

    _email = field_validator("email")(email_value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return None if v is None else (profile.parse_phone(v) or "")


class ProspectUpdate(_Contact):
    """``PUT /api/prospects/{id}``."""

    source: str | None = Field(default=None, max_length=profile.SOURCE_MAX_LENGTH)
    notes: str | None = Field(default=None, max_length=profile.NOTES_MAX_LENGTH)


class PersonCreate(BaseModel):
    """``POST /api/students`` and ``POST /api/instructors`` (admins; no prospect)."""

    model_config = STRICT
    first_name: str = Field(**_NAME)
    last_name: str = Field(**_NAME)
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=40, description="Any common format.")

    _name = field_validator("first_name", "last_name")(name_value)

    _email = field_validator("email")(email_value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return _optional(profile.parse_phone, v)


class ProspectCreate(PersonCreate):
    """``POST /api/prospects``."""

    source: str | None = Field(default=None, max_length=profile.SOURCE_MAX_LENGTH)
    notes: str | None = Field(default=None, max_length=profile.NOTES_MAX_LENGTH)


class MergeRequest(BaseModel):
    """``POST /api/prospects/{id}/merge``: merge this prospect into ``into``."""

    model_config = STRICT
    into: str = Field(description="The survivor's prospect id.", max_length=36)


class ConvertRequest(BaseModel):
    """``POST /api/prospects/{id}/convert``."""

    model_config = STRICT
    role: Literal["student", "instructor"]


class StudentUpdate(_Contact):
    """``PUT /api/students/{id}``."""


class InstructorUpdate(_Contact):
    """``PUT /api/instructors/{id}``."""


class Enrollment(BaseModel):
    """``POST /api/students/{id}/enrollments`` and ``.../withdrawals``."""

    model_config = STRICT
    course: str = Field(max_length=20, description="A course code such as CS-101.")

    @field_validator("course")
    @classmethod
    def _course(cls, v: str) -> str:
        return domain_value(course_code, v)


class InstructorDeactivate(BaseModel):
    """``POST /api/instructors/{id}/deactivate``."""

    model_config = STRICT
    reason: str = Field(default="", max_length=500)


class NoBody(BaseModel):
    """A command with no fields of its own (the form has none)."""

    model_config = STRICT


class ProspectPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    source: str | None
    notes: str
    other_names: list[str]
    other_emails: list[str]
    other_phones: list[str]
    other_sources: list[str]
    status: Literal["active", "merging", "merged"]
    into_id: str | None = Field(description="The survivor, when merging or merged.")
    converted: list[str]
    created_at: str
    updated_at: str
    version: int


class ProspectPage(BaseModel):
    items: list[ProspectPublic]
    total: int
    page: int
    page_size: int


class StudentPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")
    student_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    courses: list[str]
    created_at: str
    updated_at: str
    version: int


class StudentPage(BaseModel):
    items: list[StudentPublic]
    total: int
    page: int
    page_size: int


class InstructorPublic(BaseModel):
    model_config = ConfigDict(extra="ignore")
    instructor_id: str
    prospect_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    active: bool
    created_at: str
    updated_at: str
    version: int


class InstructorPage(BaseModel):
    items: list[InstructorPublic]
    total: int
    page: int
    page_size: int


class CommandForm(BaseModel):
    """One command the ``/identity`` page can send: where, and its body's JSON Schema."""

    name: str
    method: Literal["POST", "PUT"]
    path: str = Field(description="With ``{id}`` where the target's id goes.")
    needs_id: bool
    schema_: dict[str, Any] = Field(alias="schema")


COMMAND_FORMS: tuple[tuple[str, Literal["POST", "PUT"], str, type[BaseModel]], ...] = (
    ("CreateProspect", "POST", "/api/prospects", ProspectCreate),
    ("UpdateProspect", "PUT", "/api/prospects/{id}", ProspectUpdate),
    ("MergeProspect", "POST", "/api/prospects/{id}/merge", MergeRequest),
    ("ConvertProspect", "POST", "/api/prospects/{id}/convert", ConvertRequest),
    ("CreateStudent", "POST", "/api/students", PersonCreate),
    ("UpdateStudent", "PUT", "/api/students/{id}", StudentUpdate),
    ("EnrollStudent", "POST", "/api/students/{id}/enrollments", Enrollment),
    ("WithdrawStudent", "POST", "/api/students/{id}/withdrawals", Enrollment),
    ("CreateInstructor", "POST", "/api/instructors", PersonCreate),
    ("UpdateInstructor", "PUT", "/api/instructors/{id}", InstructorUpdate),
    ("DeactivateInstructor", "POST", "/api/instructors/{id}/deactivate", InstructorDeactivate),
    ("ReactivateInstructor", "POST", "/api/instructors/{id}/reactivate", NoBody),
)
