"""Local Avro schema registry: the ``.avsc`` files shipped with the code, no registry server.

Each file ``<EventType>.v<N>.avsc`` (anywhere under the root) is one writer schema for one
event type and version. Schemas are identified on the wire by their CRC-64-AVRO (Rabin)
fingerprint over the Parsing Canonical Form, as the Avro specification's "Single-object
encoding" requires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from schemas.exceptions import SchemaError, UnknownSchemaError

__all__ = [
    "DEFAULT_ROOT",
    "ENVELOPE_FIELDS",
    "PRE_ACTOR_ENVELOPE_FIELDS",
    "SchemaRegistry",
    "crc64_fingerprint",
]

DEFAULT_ROOT = Path(__file__).parent / "avro"

# Every writer schema is an envelope record; the codec maps these fields 1:1 to Envelope.
ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "aggregate_type",
    "aggregate_id",
    "aggregate_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "actor",
    "data",
)
# The envelope of every v1 schema, published before ``actor`` existed: still readable
# (``schemas.upcasting`` supplies the actor), never written again.
PRE_ACTOR_ENVELOPE_FIELDS = tuple(f for f in ENVELOPE_FIELDS if f != "actor")

# The envelope with seed 003's ``subject`` ("<aggregate_type>/<aggregate_id>", derived from
# the two, ``Envelope.subject``), which the identity events carry (issue 11).
SUBJECT_ENVELOPE_FIELDS = (*ENVELOPE_FIELDS[:5], "subject", *ENVELOPE_FIELDS[5:])
_LAYOUTS = (ENVELOPE_FIELDS, PRE_ACTOR_ENVELOPE_FIELDS, SUBJECT_ENVELOPE_FIELDS)
_FILE_RE = re.compile(r"(?P<event_type>[A-Za-z][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc")


def crc64_fingerprint(parsed: Any) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of a parsed schema, in wire (little-endian) order.

    fastavro's ``fingerprint`` returns the hex of the little-endian bytes, which is exactly the
    byte order single-object encoding puts on the wire.
    """
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


@dataclass(frozen=True, slots=True)
class _Entry:
    event_type: str
    version: int
    parsed: Any
    fingerprint: bytes
    path: Path
    fields: tuple[str, ...]
    source: dict[str, Any]


class SchemaRegistry:
    """Writer schemas by ``(event_type, version)`` and by fingerprint. Build with :meth:`load`."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._by_key: dict[tuple[str, int], _Entry] = {}
        self._by_fp: dict[bytes, _Entry] = {}
        for entry in entries:
            key = (entry.event_type, entry.version)
            if key in self._by_key:
                other = self._by_key[key].path
                raise SchemaError(f"{entry.event_type} v{entry.version}: {entry.path} and {other}")
            if entry.fingerprint in self._by_fp:
                other = self._by_fp[entry.fingerprint].path
                raise SchemaError(f"{entry.path} and {other} have the same fingerprint")
            self._by_key[key] = entry
            self._by_fp[entry.fingerprint] = entry
        # asked on every decode (the sink's hot path): computed once, the registry is fixed
        self._latest: dict[str, int] = {}
        for event_type, version in self._by_key:
            self._latest[event_type] = max(version, self._latest.get(event_type, 0))

    @classmethod
    def load(cls, root: Path | None = None) -> SchemaRegistry:
        """Load every ``*.avsc`` under ``root`` (default: this package's ``avro`` directory).

        Raises ``SchemaError`` for a file not named ``<EventType>.v<N>.avsc``, unreadable or
        invalid JSON/Avro, or a duplicate event type and version.
        """
        base = DEFAULT_ROOT if root is None else Path(root)
        if not base.is_dir():
            raise SchemaError(f"schema root {base} is not a directory")
        return cls([_load_file(path) for path in sorted(base.rglob("*.avsc"))])

    def writer(self, event_type: str, version: int) -> Any:
        """The parsed writer schema. Raises ``UnknownSchemaError``."""
        return self._entry(event_type, version).parsed

    def fingerprint(self, event_type: str, version: int) -> bytes:
        """The 8-byte little-endian fingerprint. Raises ``UnknownSchemaError``."""
        return self._entry(event_type, version).fingerprint

    def source(self, event_type: str, version: int) -> dict[str, Any]:
        """The writer schema as its file declares it (JSON; not fastavro's parsed form, which
        carries fastavro's own keys). Raises ``UnknownSchemaError``."""
        return self._entry(event_type, version).source

    def fields(self, event_type: str, version: int) -> tuple[str, ...]:
        """The writer schema's envelope field names, in order. Raises ``UnknownSchemaError``."""
        return self._entry(event_type, version).fields

    def latest_version(self, event_type: str) -> int:
        """Highest known version of ``event_type``. Raises ``UnknownSchemaError``."""
        latest = self._latest.get(event_type)
        if latest is None:
            raise UnknownSchemaError(f"no schema for event type {event_type!r}")
        return latest

    def by_fingerprint(self, fp: bytes) -> tuple[str, int, Any]:
        """``(event_type, version, parsed_schema)`` for an 8-byte fingerprint.

        Raises ``UnknownSchemaError``.
        """
        entry = self._by_fp.get(bytes(fp))
        if entry is None:
            raise UnknownSchemaError(f"no schema with fingerprint {bytes(fp).hex()}")
        return entry.event_type, entry.version, entry.parsed

    def event_types(self) -> list[str]:
        """Sorted distinct event type names."""
        return sorted({et for (et, _) in self._by_key})

    def _entry(self, event_type: str, version: int) -> _Entry:
        entry = self._by_key.get((event_type, version))
        if entry is None:
            raise UnknownSchemaError(f"no schema for {event_type} v{version}")
        return entry


def _load_file(path: Path) -> _Entry:
    match = _FILE_RE.fullmatch(path.name)
    if match is None:
        raise SchemaError(f"{path}: schema files must be named <EventType>.v<N>.avsc")
    try:
        raw = orjson.loads(path.read_bytes())
        # A fresh named-type namespace per file: every file is a self-contained writer schema.
        parsed = fastavro.parse_schema(raw, named_schemas={})
    except (OSError, ValueError, SchemaParseException) as exc:
        raise SchemaError(f"{path}: cannot load schema: {exc}") from exc
    names = tuple(f.get("name") for f in raw.get("fields", ())) if isinstance(raw, dict) else ()
    if not isinstance(raw, dict) or raw.get("type") != "record" or names not in _LAYOUTS:
        raise SchemaError(f"{path}: must be a record with fields {', '.join(ENVELOPE_FIELDS)}")
    return _Entry(
        event_type=match["event_type"],
        version=int(match["version"]),
        parsed=parsed,
        fingerprint=crc64_fingerprint(parsed),
        path=path,
        fields=names,
        source=raw,
    )
