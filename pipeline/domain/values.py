"""Value objects for the user domain.

Each value object is a frozen, slotted dataclass holding one canonical ``value`` string.
Construct them with ``parse(raw)``, which normalises then validates; direct construction
re-validates in ``__post_init__`` so an instance is always canonical. Every failure raises
:class:`~pipeline.domain.errors.InvalidValue` naming the input field.

Pure: no network access (e-mail deliverability/DNS checks are disabled on purpose, so the
domain stays deterministic and replayable).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error
from email_validator import EmailNotValidError, validate_email

from pipeline.domain.errors import InvalidValue

__all__ = [
    "ARGON2ID_PREFIX",
    "EMAIL_MAX_LENGTH",
    "NAME_MAX_LENGTH",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "Email",
    "HashedPassword",
    "Phone",
    "UserRole",
    "Username",
    "hash_password",
    "parse_name",
    "parse_role",
    "verify_password",
]

# RFC 5321 limits a forward-path to 256 octets including the angle brackets.
EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 100
# Lower bound per NIST SP 800-63B (8 chars minimum); the upper bound caps hashing cost so a
# megabyte "password" cannot be used to burn CPU.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
ARGON2ID_PREFIX = "$argon2id$"

_USERNAME_RE = re.compile(r"[a-z0-9_]{3,30}")
# argon2-cffi defaults follow RFC 9106's second recommended option and use the argon2id variant.
# argon2id at OWASP's Password Storage Cheat Sheet minimum (19 MiB, t=2, p=1): 41 ms a
# hash here vs 166 ms at argon2-cffi's default RFC 9106 profile (64 MiB, t=3, p=4), which
# capped user creation at ~6/s on 2 cores. verify() reads the parameters from each hash,
# so hashes made with other parameters still verify.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def _require_str(field: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise InvalidValue(field, f"must be a string, got {type(raw).__name__}")
    return raw


def _normalise_email(raw: Any) -> str:
    text = _require_str("email", raw).strip()
    if not text:
        raise InvalidValue("email", "must not be empty")
    if len(text) > EMAIL_MAX_LENGTH:
        raise InvalidValue("email", f"must be at most {EMAIL_MAX_LENGTH} characters")
    try:
        validated = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue("email", str(exc)) from exc
    # Uniqueness is case-insensitive across the whole address, so the canonical form is
    # lowercase even in the local part (which RFC 5321 technically treats as case-sensitive).
    return validated.normalized.lower()


@dataclass(frozen=True, slots=True)
class _Lowercased:
    """A value held in its normalised (stripped, lowercase) form: ``parse`` normalises,
    direct construction must already be normalised. A subclass names its ``field`` (in
    ``InvalidValue``) and its ``normalise`` function."""

    value: str
    field: ClassVar[str]
    normalise: ClassVar[Callable[[Any], str]]

    def __post_init__(self) -> None:
        if type(self).normalise(self.value) != self.value:
            raise InvalidValue(self.field, "is not in normalised (stripped, lowercase) form")

    @classmethod
    def parse(cls, raw: str) -> Self:
        """``normalise(raw)``. Raises ``InvalidValue(field, ...)``."""
        return cls(cls.normalise(raw))

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Email(_Lowercased):
    """A syntactically valid e-mail address, lowercased: ``parse`` strips, validates the
    syntax (no DNS) and lowercases.

    ``value``: e.g. ``"jane.doe@example.com"``; at most 254 characters.
    Raises ``InvalidValue("email", ...)``.
    """

    field = "email"
    normalise = staticmethod(_normalise_email)


def email_claim(raw: str | None) -> tuple[str, ...]:
    """The uniqueness claim of the e-mail a command sets, ``("email:<normalised>",)``; ()
    when it sets none or an invalid one (``decide`` rejects that). Users, prospects,
    students and instructors each keep e-mail unique per aggregate type (issue 11), through
    the reservation chain (``pipeline/write/agents/reservations.py``)."""
    if raw is None:
        return ()
    try:
        return (f"email:{Email.parse(raw).value}",)
    except InvalidValue:
        return ()


def _to_e164(raw: Any, default_region: str | None) -> str:
    text = _require_str("phone", raw).strip()
    if not text:
        raise InvalidValue("phone", "must not be empty")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue("phone", f"cannot be parsed: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone", "is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class Phone:
    """A valid phone number in E.164 form, e.g. ``"+15046218927"``.

    Raises ``InvalidValue("phone", ...)``.
    """

    value: str

    def __post_init__(self) -> None:
        # E.164 strings carry their country code, so no default region is needed to re-check.
        if _to_e164(self.value, None) != self.value:
            raise InvalidValue("phone", "is not in E.164 form")

    @classmethod
    def parse(cls, raw: str, default_region: str = "US") -> Phone:
        """Parse a national or international number; ``default_region`` (ISO 3166-1 alpha-2)
        applies to numbers written without ``+country``. Raises ``InvalidValue("phone", ...)``.
        """
        return cls(_to_e164(raw, default_region))

    def __str__(self) -> str:
        return self.value


def _normalise_username(raw: Any) -> str:
    text = _require_str("username", raw).strip().lower()
    if not _USERNAME_RE.fullmatch(text):
        raise InvalidValue("username", "must be 3-30 characters of a-z, 0-9 or underscore")
    return text


@dataclass(frozen=True, slots=True)
class Username(_Lowercased):
    """A login name: 3-30 chars of ``[a-z0-9_]``, lowercased because uniqueness is
    case-insensitive (``parse`` strips and lowercases, then validates). Raises
    ``InvalidValue("username", ...)``.
    """

    field = "username"
    normalise = staticmethod(_normalise_username)


class UserRole(StrEnum):
    """Authorisation role of a user."""

    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"
    ANALYST = "analyst"
    """Reads every partner's analytics and runs analyst SQL over the tracking tables; no
    write route, no account data (issue 23)."""


def parse_role(raw: str) -> UserRole:
    """Strip/lowercase ``raw`` and map it to a :class:`UserRole`.

    Raises ``InvalidValue("role", ...)`` listing the allowed values.
    """
    text = _require_str("role", raw).strip().lower()
    try:
        return UserRole(text)
    except ValueError as exc:
        allowed = ", ".join(role.value for role in UserRole)
        raise InvalidValue("role", f"must be one of: {allowed}") from exc


def parse_name(field: str, raw: str) -> str:
    """Strip ``raw``; it must then be 1-100 characters. Raises ``InvalidValue(field, ...)``."""
    text = _require_str(field, raw).strip()
    if not 1 <= len(text) <= NAME_MAX_LENGTH:
        raise InvalidValue(field, f"must be 1-{NAME_MAX_LENGTH} characters")
    return text


@dataclass(frozen=True, slots=True)
class HashedPassword:
    """An argon2id PHC string (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``).

    Only the hash is ever held; the plain password never enters a domain object. The repr is
    redacted so hashes do not leak into logs. Raises ``InvalidValue("password_hash", ...)``.
    """

    value: str

    def __post_init__(self) -> None:
        _require_str("password_hash", self.value)
        if not self.value.startswith(ARGON2ID_PREFIX):
            raise InvalidValue("password_hash", f"must be an argon2id hash ({ARGON2ID_PREFIX}...)")

    @classmethod
    def parse(cls, raw: str) -> HashedPassword:
        """Accept an existing argon2id PHC string. Raises ``InvalidValue("password_hash", ...)``."""
        return cls(raw)

    def __repr__(self) -> str:
        return "HashedPassword('<redacted>')"


def hash_password(plain: str) -> HashedPassword:
    """Hash a plain password with argon2id (argon2-cffi defaults, random salt).

    Policy: 8-128 characters, else ``InvalidValue("password", ...)``. Slow by design
    (tens of milliseconds): call it at the edge (API), not inside ``decide``.
    """
    text = _require_str("password", plain)
    if not PASSWORD_MIN_LENGTH <= len(text) <= PASSWORD_MAX_LENGTH:
        raise InvalidValue(
            "password", f"must be {PASSWORD_MIN_LENGTH}-{PASSWORD_MAX_LENGTH} characters"
        )
    return HashedPassword(_HASHER.hash(text))


def verify_password(hashed: HashedPassword, plain: str) -> bool:
    """True iff ``plain`` matches ``hashed``. Never raises: a mismatch, a malformed hash or a
    non-string input all return False.
    """
    if not isinstance(plain, str):
        return False
    try:
        return _HASHER.verify(hashed.value, plain)
    # Argon2Error covers mismatch/verification failures; ValueError covers malformed or
    # unsupported-parameter hashes (InvalidHashError, UnsupportedParametersError).
    except (Argon2Error, ValueError):
        return False


def canonical_uuid(field: str, raw: Any) -> str:
    """``raw`` if it is a UUID in canonical lowercase hyphenated form."""
    try:
        canonical = str(uuid.UUID(raw))
    except (TypeError, ValueError, AttributeError) as exc:
        raise InvalidValue(field, "must be a UUID string") from exc
    # Ids are also Kafka keys and table keys: another spelling would be another aggregate.
    if canonical != raw:
        raise InvalidValue(field, f"must be a canonical lowercase UUID ({canonical})")
    return canonical
