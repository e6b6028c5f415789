"""Avro single-object encoding of event envelopes.

Wire format (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema, little-endian | Avro body

The body is the schemaless (raw binary) encoding of the whole envelope with the writer schema
for ``(event_type, schema_version)``. Decoding resolves the writer schema by fingerprint, so
no registry server is needed; older versions are then upcast to the newest.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import fastavro

from schemas.compiled import Encoder, compile_encoder
from schemas.envelope import Envelope
from schemas.exceptions import CorruptPayloadError, DecodeError, EncodeError
from schemas.registry import SchemaRegistry
from schemas.upcasting import DEFAULT_UPCASTERS, Upcasters

__all__ = ["HEADER_LENGTH", "MAGIC", "AvroCodec", "fingerprint_of"]

MAGIC = b"\xc3\x01"
HEADER_LENGTH = len(MAGIC) + 8

# fastavro signals bad input with assorted built-in exceptions rather than one base class.
_AVRO_WRITE_ERRORS = (ValueError, TypeError, AttributeError, KeyError, OverflowError)
_AVRO_READ_ERRORS = (EOFError, ValueError, TypeError, IndexError, KeyError, OverflowError)


def fingerprint_of(payload: bytes) -> bytes | None:
    """The 8 fingerprint bytes of a single-object payload, or None if it has no valid header."""
    if len(payload) < HEADER_LENGTH or payload[: len(MAGIC)] != MAGIC:
        return None
    return bytes(payload[len(MAGIC) : HEADER_LENGTH])


class AvroCodec:
    """Encode/decode :class:`Envelope` with schemas from ``registry``.

    ``upcasters`` (default :data:`DEFAULT_UPCASTERS`) lift old schema versions to the newest.
    """

    def __init__(self, registry: SchemaRegistry, upcasters: Upcasters | None = None) -> None:
        self._registry = registry
        self._upcasters = DEFAULT_UPCASTERS if upcasters is None else upcasters
        self._encoders: dict[tuple[str, int], Encoder | None] = {}

    @property
    def registry(self) -> SchemaRegistry:
        """The writer schemas this codec encodes and decodes with."""
        return self._registry

    def encode(self, envelope: Envelope) -> bytes:
        """Single-object bytes for ``envelope``.

        Raises ``UnknownSchemaError`` if no schema exists for its event type and version, and
        ``EncodeError`` if the envelope does not fit the schema (including naive datetimes).
        """
        et, version = envelope.event_type, envelope.schema_version
        schema = self._registry.writer(et, version)
        if envelope.occurred_at.tzinfo is None:
            raise EncodeError(f"{et} {envelope.event_id}: occurred_at must be tz-aware")
        record = {
            "event_id": envelope.event_id,
            "event_type": et,
            "schema_version": version,
            "aggregate_type": envelope.aggregate_type,
            "aggregate_id": envelope.aggregate_id,
            "subject": envelope.subject,
            "aggregate_version": envelope.aggregate_version,
            "occurred_at": envelope.occurred_at,
            "producer": envelope.producer,
            "correlation_id": envelope.correlation_id,
            "causation_id": envelope.causation_id,
            "actor": envelope.actor,
            "data": envelope.data,
        }
        # A pre-actor (v1) layout is still writable, so tests and tools can make old events;
        # ``subject`` only where a schema has it.
        record = {name: record[name] for name in self._registry.fields(et, version)}
        _check_aware(et, envelope.data)
        header = MAGIC + self._registry.fingerprint(et, version)
        encoder = self._encoder(et, version)
        if encoder is not None:
            try:
                return header + encoder(record)
            except Exception:  # fastavro below encodes it, or says what is wrong with it
                pass
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            # strict: a missing or unexpected field is a producer bug, not something to default.
            fastavro.schemaless_writer(buffer, schema, record, strict=True)
        except _AVRO_WRITE_ERRORS as exc:
            raise EncodeError(f"{et} v{version} {envelope.event_id}: {exc}") from exc
        return buffer.getvalue()

    def _encoder(self, event_type: str, version: int) -> Encoder | None:
        """The compiled encoder of a writer schema (``schemas/compiled.py``), made once;
        None when it cannot be compiled (fastavro encodes alone)."""
        key = (event_type, version)
        if key not in self._encoders:
            self._encoders[key] = compile_encoder(self._registry.source(event_type, version))
        return self._encoders[key]

    def decode(self, payload: bytes) -> Envelope:
        """The envelope in ``payload``, upcast to the newest schema version.

        Raises ``CorruptPayloadError`` (bad magic, truncated header/body, trailing bytes, Avro
        read failure), ``UnknownSchemaError`` (fingerprint not in the registry) or
        ``DecodeError`` (no upcaster chain reaches the newest version).
        """
        if len(payload) < HEADER_LENGTH:
            raise CorruptPayloadError(
                f"payload is {len(payload)} bytes, shorter than the "
                f"{HEADER_LENGTH}-byte single-object header"
            )
        if payload[: len(MAGIC)] != MAGIC:
            raise CorruptPayloadError(
                f"bad magic bytes {bytes(payload[: len(MAGIC)]).hex()}, expected {MAGIC.hex()}"
            )
        fp = bytes(payload[len(MAGIC) : HEADER_LENGTH])
        event_type, version, schema = self._registry.by_fingerprint(fp)
        body = io.BytesIO(payload[HEADER_LENGTH:])
        try:
            record = fastavro.schemaless_reader(body, schema)
        except _AVRO_READ_ERRORS as exc:
            raise CorruptPayloadError(
                f"cannot read {event_type} v{version} body: {type(exc).__name__}: {exc}"
            ) from exc
        trailing = len(payload) - HEADER_LENGTH - body.tell()
        if trailing:
            raise CorruptPayloadError(f"{event_type} v{version}: {trailing} trailing bytes")
        if not isinstance(record, dict):
            raise CorruptPayloadError(f"{event_type} v{version}: body is not a record")
        return self._to_envelope(event_type, version, record)

    def _to_envelope(self, event_type: str, version: int, record: dict[str, Any]) -> Envelope:
        new_version, record = self._upcasters.upcast(event_type, version, record)
        latest = self._registry.latest_version(event_type)
        if new_version != latest:
            raise DecodeError(
                f"{event_type} v{version} upcasts to v{new_version}, but the newest schema is "
                f"v{latest}: an upcaster is missing"
            )
        event_id = record["event_id"]
        return Envelope(
            # fastavro turns the uuid logical type into uuid.UUID; the envelope holds strings.
            event_id=str(event_id) if isinstance(event_id, uuid.UUID) else event_id,
            event_type=record["event_type"],
            schema_version=new_version,
            aggregate_type=record["aggregate_type"],
            aggregate_id=record["aggregate_id"],
            aggregate_version=record["aggregate_version"],
            occurred_at=_utc(record["occurred_at"]),
            producer=record["producer"],
            correlation_id=record["correlation_id"],
            causation_id=record["causation_id"],
            actor=record["actor"],
            data=record["data"],
        )


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _check_aware(event_type: str, data: dict[str, Any]) -> None:
    # fastavro would silently read a naive datetime as UTC; refuse the ambiguity instead.
    for name, value in data.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            raise EncodeError(f"{event_type}: data.{name} must be a tz-aware datetime")
