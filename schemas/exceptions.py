"""Errors raised by the Avro schema registry and codec.

Every error derives from :class:`SchemaError`. Third-party (fastavro, json, OS) errors are
wrapped with ``raise ... from exc`` so the cause stays visible in tracebacks.
"""

from __future__ import annotations

__all__ = [
    "CorruptPayloadError",
    "DecodeError",
    "EncodeError",
    "SchemaError",
    "UnknownSchemaError",
]


class SchemaError(Exception):
    """Root of schema/codec errors.

    Raised directly when the schema files themselves are broken (bad file name, invalid JSON or
    Avro, duplicate event type/version). Operator: fix the ``.avsc`` files under
    ``schemas/avro`` and redeploy; nothing can be encoded or decoded until then.
    """


class EncodeError(SchemaError):
    """An envelope does not fit its writer schema (wrong field types, missing fields, naive
    datetime). Operator: this is a producer bug; the event was not published.
    """


class DecodeError(SchemaError):
    """A payload could not be turned into an envelope.

    Operator: the message cannot be processed by this release; route it to the dead-letter
    topic and inspect it (see the subclasses for the specific cause).
    """


class UnknownSchemaError(DecodeError):
    """The payload's schema fingerprint (or an event type/version) is not in the registry.

    Operator: usually the message was written by a newer release with a schema this one lacks;
    deploy the release that ships the schema, then replay the dead-lettered messages.
    """


class CorruptPayloadError(DecodeError):
    """The payload is not valid single-object Avro: bad magic bytes, truncated header or body,
    trailing bytes, or an Avro read failure. Operator: the bytes were damaged or were not
    produced by this codec; they cannot be replayed as-is.
    """
