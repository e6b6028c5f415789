"""Validation rules for the raw values of partner commands.

Each function takes the raw value as sent and returns the normalised value, or raises
:class:`~pipeline.domain.errors.InvalidValue` naming the field; ``decide`` turns that into an
INVALID rejection. The API may call them too, to fail fast before a command is sent.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from pipeline.domain.errors import InvalidValue

__all__ = [
    "CONTACT_PERSON_MAX_LENGTH",
    "DESCRIPTION_MAX_LENGTH",
    "EVENT_NAME_MAX_LENGTH",
    "JSON_SCHEMA_MAX_BYTES",
    "MAX_READ_TOKENS",
    "MAX_SYSTEMS_LIMIT",
    "PARTNER_NAME_MAX_LENGTH",
    "SYSTEM_NAME_MAX_LENGTH",
    "TOKEN_NAME_MAX_LENGTH",
    "boolean",
    "event_name",
    "json_schema",
    "key_hash",
    "key_prefix",
    "max_systems",
    "optional_text",
    "require_str",
    "text",
]

PARTNER_NAME_MAX_LENGTH = 200
CONTACT_PERSON_MAX_LENGTH = 200
SYSTEM_NAME_MAX_LENGTH = 100
# Not in the seed spec: a bound so one description cannot bloat every snapshot and event.
DESCRIPTION_MAX_LENGTH = 1000
MAX_SYSTEMS_LIMIT = 100
TOKEN_NAME_MAX_LENGTH = 100
# Active read tokens per partner: enough for one per dashboard, tool and teammate; a bound
# so a leaked admin script cannot grow the partner's state without end.
MAX_READ_TOKENS = 20
EVENT_NAME_MAX_LENGTH = 100
JSON_SCHEMA_MAX_BYTES = 64 * 1024

_KEY_HASH_RE = re.compile(r"[0-9a-f]{64}")
# Printable ASCII without spaces: covers "sk_live_" + base64url/hex key heads.
_KEY_PREFIX_RE = re.compile(r"[!-~]{8,16}")
_EVENT_NAME_RE = re.compile(rf"[A-Za-z0-9_.:\- ]{{1,{EVENT_NAME_MAX_LENGTH}}}")


def require_str(field: str, raw: Any) -> str:
    """``raw`` if it is a str encodable as UTF-8 (Avro strings are UTF-8; a lone surrogate
    would only fail later, at encode time). Raises ``InvalidValue(field, ...)``.
    """
    if not isinstance(raw, str):
        raise InvalidValue(field, f"must be a string, got {type(raw).__name__}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValue(field, "must be valid Unicode text") from exc
    return raw


def text(field: str, raw: Any, max_length: int) -> str:
    """Strip ``raw``; it must then be 1-``max_length`` characters."""
    value = require_str(field, raw).strip()
    if not 1 <= len(value) <= max_length:
        raise InvalidValue(field, f"must be 1-{max_length} characters")
    return value


def optional_text(field: str, raw: Any, max_length: int) -> str | None:
    """None for None or blank text (an empty form field means "none"); else stripped text of
    at most ``max_length`` characters.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    return text(field, raw, max_length)


def max_systems(raw: Any) -> int:
    """An int in 1-100 (bool is refused even though it is an int subclass)."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise InvalidValue("max_systems", "must be an integer")
    if not 1 <= raw <= MAX_SYSTEMS_LIMIT:
        raise InvalidValue("max_systems", f"must be 1-{MAX_SYSTEMS_LIMIT}")
    return raw


def boolean(field: str, raw: Any) -> bool:
    """``raw`` if it is a bool."""
    if not isinstance(raw, bool):
        raise InvalidValue(field, "must be true or false")
    return raw


def key_hash(raw: Any, field: str = "key_hash") -> str:
    """SHA-256 of an API key or read token as 64 lowercase hex chars
    (``hashlib.sha256(k).hexdigest()``); not lowercased here, because lookups compare
    hashes byte for byte.
    """
    if not isinstance(raw, str) or not _KEY_HASH_RE.fullmatch(raw):
        raise InvalidValue(field, "must be a SHA-256 hex digest (64 lowercase hex chars)")
    return raw


def key_prefix(raw: Any, field: str = "key_prefix") -> str:
    """8-16 printable ASCII characters without spaces, e.g. ``"sk_live_AbCd"``."""
    if not isinstance(raw, str) or not _KEY_PREFIX_RE.fullmatch(raw):
        raise InvalidValue(field, "must be 8-16 printable ASCII characters, no spaces")
    return raw


def event_name(raw: Any) -> str:
    """Strip ``raw``; it must then be 1-100 chars of letters, digits, ``_ . : -`` or space."""
    value = require_str("event_name", raw).strip()
    if not _EVENT_NAME_RE.fullmatch(value):
        raise InvalidValue(
            "event_name",
            f"must be 1-{EVENT_NAME_MAX_LENGTH} characters of letters, digits, _ . : - or space",
        )
    return value


def json_schema(raw: Any) -> str:
    """``raw`` (unchanged) if it is JSON text, at most 64 KiB as UTF-8, of an object that is a
    valid JSON Schema for its dialect (``$schema``, default: the latest draft jsonschema knows),
    checked with ``validator_for(schema).check_schema(schema)``. An unknown ``$schema`` is
    refused rather than guessed at, and so is any ``$ref`` not starting with ``#`` (it would
    make event validation fetch a URL). A ``{"$ref": "http..."}`` inside ``const``/``enum``
    data is refused too: the walk does not tell keywords from data. Last, it must run on
    ``{}`` with the validator recording uses.
    """
    value = require_str("json_schema", raw)
    if len(value.encode("utf-8")) > JSON_SCHEMA_MAX_BYTES:
        raise InvalidValue("json_schema", f"must be at most {JSON_SCHEMA_MAX_BYTES} bytes")
    try:
        schema = orjson.loads(value)
    except (ValueError, RecursionError) as exc:  # NaN/Infinity too: not JSON (RFC 8259)
        raise InvalidValue("json_schema", f"is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise InvalidValue("json_schema", "must be a JSON object")
    if "$schema" in schema:
        dialect = schema["$schema"]
        cls = validator_for(schema, default=None) if isinstance(dialect, str) else None
        if cls is None:
            raise InvalidValue("json_schema", f"unknown $schema {dialect!r}")
    else:
        cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        message = f"is not a valid JSON Schema at {where}: {exc.message}"
        raise InvalidValue("json_schema", message) from exc
    except RecursionError as exc:
        raise InvalidValue("json_schema", "is nested too deeply") from exc
    _only_local_refs(schema)
    _compiles(schema)
    return value


def _compiles(schema: dict[str, Any]) -> None:
    """Refuse what recording cannot apply (``pipeline/edge/recording.py`` validates events
    with the same library). ``check_schema`` accepts a ``$ref`` that points at itself or
    at nothing; validating then recurses without end or fails on the first event (found
    by hand: one such structure and one event stopped the validation consumer). So the
    structure is run once, on ``{}``, here."""
    try:
        validator_for(schema)(schema).is_valid({})
    except Unresolvable as exc:
        raise InvalidValue("json_schema", f"cannot be compiled: {exc}") from exc
    except RecursionError as exc:
        raise InvalidValue("json_schema", "refers to itself without end") from exc


_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _only_local_refs(schema: dict[str, Any]) -> None:
    # A non-local $ref makes validators fetch a URL while validating events (network I/O in
    # the pipeline, and a request forgery vector), so only "#..." references are allowed.
    # Iterative: check_schema already bounded the depth, but this keeps the stack flat.
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for keyword in _REF_KEYWORDS:
                ref = node.get(keyword)
                if isinstance(ref, str) and not ref.startswith("#"):
                    message = f"{keyword} {ref[:100]!r} is not local: only '#...' refs are allowed"
                    raise InvalidValue("json_schema", message)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
