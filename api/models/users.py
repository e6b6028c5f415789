"""Request and response bodies. Requests validate with the domain's value objects, so a
bad email or phone is a 422 before anything reaches Kafka; decide checks again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from api.models.common import STRICT, domain_value, email_value, name_value
from pipeline.domain.values import Phone, Username, UserRole


class _Profile(BaseModel):
    model_config = STRICT
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, description="Any common format; stored as E.164.")
    role: UserRole = UserRole.STUDENT

    _name = field_validator("first_name", "last_name")(name_value)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return None if v in (None, "") else domain_value(Phone.parse, v)


class _Credentials(BaseModel):
    model_config = STRICT
    username: str = Field(description="3-30 chars of a-z, 0-9, _; unique, case-insensitive.")
    email: str = Field(max_length=254)
    password: SecretStr = Field(min_length=8, max_length=128)

    @field_validator("username")
    @classmethod
    def _username(cls, v: str) -> str:
        return domain_value(Username.parse, v)

    _email = field_validator("email")(email_value)


class UserCreate(_Profile, _Credentials):
    """An account an admin creates (``POST /api/admin/users``)."""


class Registration(_Credentials):
    """Self-registration (``POST /api/users/register``): a student account."""

    display_name: str = Field(min_length=1, max_length=100)


class UserUpdate(_Profile):
    expected_version: int | None = Field(default=None, ge=0)


class AccountUpdate(BaseModel):
    model_config = STRICT
    email: str | None = Field(default=None, max_length=254)
    password: SecretStr | None = Field(default=None, min_length=8, max_length=128)
    expected_version: int | None = Field(default=None, ge=0)

    _email = field_validator("email")(email_value)


class Deactivate(BaseModel):
    model_config = STRICT
    reason: str | None = Field(default=None, max_length=500)
    expected_version: int | None = Field(default=None, ge=0)


class UserPublic(BaseModel):
    user_id: str
    username: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: str
    status: str
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    version: int


class UserPage(BaseModel):
    items: list[UserPublic]
    total: int
    page: int
    page_size: int


class HistoryEvent(BaseModel):
    event_id: str
    event_type: str
    schema_version: int
    aggregate_version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    causation_id: str
    actor: str = Field(
        description='Who caused it: a user id, "system" (operator tools), "unknown" (events '
        "written before envelopes carried an actor)."
    )
    data: dict[str, Any]
    topic: str
    partition: int
    offset: int


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class PasswordLinkRequest(BaseModel):
    """``POST /api/auth/password-links``: a one-time link for a converted person's login."""

    model_config = STRICT
    user_id: str = Field(description="The login's user id (a converted prospect's account).")


class PasswordLinkIssued(BaseModel):
    token: str = Field(description="Shown once; the person presents it to set a password.")
    expires_at: datetime
    redeem: str = "POST /api/auth/password"


class PasswordSet(BaseModel):
    """``POST /api/auth/password``: the link's token and the new password."""

    model_config = STRICT
    token: str = Field(min_length=1, max_length=200)
    password: SecretStr = Field(min_length=8, max_length=128)
