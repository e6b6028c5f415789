"""Avro binary encoders compiled once per writer schema (Avro 1.11 specification, "Binary
Encoding"), for the types the event schemas use: record, string (uuid too), int, long
(timestamp-micros too), boolean, null, arrays and ``["null", T]`` unions.

Why: fastavro's ``schemaless_writer`` walks the schema for every record and took ~20 µs
per TrackingEventRecorded envelope, the largest single cost of recording an SDK event at
the API. A closure per field, chosen once, writes the same bytes in a fraction of that.

What it does not do is judge input: anything but the exact Python type a field takes
raises (``TypeError``, ``KeyError``, ``UnicodeEncodeError``, ``OverflowError``), and
``AvroCodec.encode`` then lets fastavro encode the record, so fastavro's strict rules and
error messages stay the only ones. Byte equality with fastavro is property-tested over
every schema in ``schemas/avro`` (``tests/unit/schemas/test_compiled.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Encoder", "compile_encoder", "encode_long", "encode_string"]

Encoder = Callable[[Mapping[str, Any]], bytes]
_Write = Callable[[Any, list[bytes]], None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT = (-(2**31), 2**31 - 1)
_LONG = (-(2**63), 2**63 - 1)


_ONE_BYTE = [bytes((z,)) for z in range(0x80)]


def encode_long(n: int) -> bytes:
    """Avro's binary ``int``/``long``: zig-zag, then a little-endian base-128 varint.
    Raises ``OverflowError`` outside a signed 64-bit integer."""
    if -64 <= n < 64:  # most lengths, versions, flags: one byte, made once
        return _ONE_BYTE[(n << 1) ^ (n >> 63)]
    if not _LONG[0] <= n <= _LONG[1]:
        raise OverflowError(f"{n} does not fit a long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_string(text: str) -> bytes:
    """Avro's binary ``string``: the UTF-8 bytes' length as a long, then the bytes. Raises
    ``UnicodeEncodeError`` for text UTF-8 cannot hold (a lone surrogate)."""
    data = text.encode()
    return encode_long(len(data)) + data


def compile_encoder(schema: dict[str, Any]) -> Encoder | None:
    """An encoder of records of ``schema`` (a record schema as declared, JSON), or None when
    it uses a type not listed in the module docstring."""
    write = _writer(schema)
    if write is None:
        return None

    def encode(record: Mapping[str, Any]) -> bytes:
        out: list[bytes] = []
        write(record, out)
        return b"".join(out)

    return encode


def _writer(t: Any) -> _Write | None:
    if isinstance(t, list):
        return _union(t)
    logical = t.get("logicalType") if isinstance(t, dict) else None
    kind = t["type"] if isinstance(t, dict) else t
    if kind == "record":
        return _record(t)
    if kind == "array":
        return _array(t)
    if kind == "string":
        return _uuid if logical == "uuid" else _string
    if kind == "long":
        return _timestamp_micros if logical == "timestamp-micros" else _long
    if logical is not None:
        return None
    if kind == "int":
        return _int
    if kind == "boolean":
        return _boolean
    if kind == "null":
        return _null
    return None


def _record(schema: dict[str, Any]) -> _Write | None:
    fields = []
    for field in schema["fields"]:
        write = _writer(field["type"])
        if write is None:
            return None
        fields.append((field["name"], write))
    count = len(fields)

    def record(value: Any, out: list[bytes]) -> None:
        # strict, as AvroCodec asks fastavro to be: no field missing, none extra
        if type(value) is not dict or len(value) != count:
            raise TypeError("not a record of exactly the schema's fields")
        for name, write in fields:
            write(value[name], out)

    return record


def _array(schema: dict[str, Any]) -> _Write | None:
    write_item = _writer(schema["items"])
    if write_item is None:
        return None

    def array(value: Any, out: list[bytes]) -> None:
        # one block of all items, then the empty block that ends an array (spec 1.11.1,
        # "Complex Types Encoding"); an empty array is the end block alone, as fastavro
        if type(value) not in (list, tuple):
            raise TypeError("not an array")
        if value:
            out.append(encode_long(len(value)))
            for item in value:
                write_item(item, out)
        out.append(b"\x00")

    return array


def _union(branches: list[Any]) -> _Write | None:
    if len(branches) != 2 or branches[0] != "null":
        return None
    write = _writer(branches[1])
    if write is None:
        return None

    def union(value: Any, out: list[bytes]) -> None:
        if value is None:
            out.append(b"\x00")  # branch 0
        else:
            out.append(b"\x02")  # branch 1, zig-zag
            write(value, out)

    return union


def _string(value: Any, out: list[bytes]) -> None:
    if type(value) is not str:
        raise TypeError("not a str")
    out.append(encode_string(value))


def _uuid(value: Any, out: list[bytes]) -> None:
    _string(value, out)  # a uuid.UUID goes to fastavro, which writes str(value)


def _long(value: Any, out: list[bytes]) -> None:
    if type(value) is not int:
        raise TypeError("not an int")
    out.append(encode_long(value))


def _int(value: Any, out: list[bytes]) -> None:
    if type(value) is not int or not _INT[0] <= value <= _INT[1]:
        raise TypeError("not a 32-bit int")
    out.append(encode_long(value))


def _timestamp_micros(value: Any, out: list[bytes]) -> None:
    if type(value) is not datetime or value.tzinfo is None:
        raise TypeError("not a tz-aware datetime")
    out.append(encode_long((value - _EPOCH) // _MICROSECOND))


def _boolean(value: Any, out: list[bytes]) -> None:
    if value is True:
        out.append(b"\x01")
    elif value is False:
        out.append(b"\x00")
    else:
        raise TypeError("not a bool")


def _null(value: Any, out: list[bytes]) -> None:
    if value is not None:
        raise TypeError("not None")
