"""JSON on the ingestion hot path: orjson (compiled), with the standard library behind it
for the inputs orjson refuses, so switching parsers changed which requests are refused as
little as possible.

Measured under ``bench/ingest.py`` (py-spy, batches of 1,000): the standard ``json`` module
took about a fifth of an API process (parse the body, size each event, serialise it for
``tracking.raw``). What orjson does differently, and what is done about it:

- It refuses ``NaN``/``Infinity`` (not JSON, RFC 8259 section 6). Python's ``json.dumps``
  writes them, so SDKs in Python send them. A body orjson refuses is read again by the
  standard parser, with those constants turned into :data:`NOT_JSON`, a value no encoder
  writes: the one event holding it is refused (``dumps`` raises), not the whole batch.
- It reads lone surrogate escapes (``"\\ud800"``) as errors: the standard parser reads them;
  ``dumps`` then refuses them (not UTF-8), as before.
- It reads integers beyond 64 bits as doubles (the standard parser keeps them exact). Such
  numbers are outside what RFC 8259 section 6 calls interoperable; JavaScript SDKs cannot
  send them and ClickHouse's JSON functions read them as doubles too.
- It writes NaN floats (from Python callers, never from a parsed body) as ``null``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

__all__ = ["NOT_JSON", "dumps", "dumps_escaped", "loads"]


class _NotJson:
    """What ``NaN``, ``Infinity`` and ``-Infinity`` read as: no encoder accepts it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Final = _NotJson()


def loads(data: bytes | str) -> Any:
    """Parse JSON text (UTF-8 bytes or str).

    Raises ``ValueError`` (``json.JSONDecodeError``, with line and column) for text that is
    not JSON, ``RecursionError`` for nesting deeper than the standard parser's stack.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # rare: not JSON at all (the standard parser's message says where), or one of the
        # cases in the module docstring
        return json.loads(data, parse_constant=lambda _: NOT_JSON)


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON of ``value``, dict keys in insertion order or sorted.

    Raises ``TypeError`` for values JSON cannot hold (:data:`NOT_JSON` among them),
    ``ValueError`` for NaN/Infinity that reached the fallback or lone surrogates,
    ``RecursionError`` for nesting deeper than the standard encoder's stack.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        # orjson.JSONEncodeError is a TypeError: integers over 64 bits from a Python caller,
        # nesting over orjson's 254 levels, or a type nobody encodes (which raises again)
        text = json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
        )
        return text.encode()


def dumps_escaped(value: Any) -> bytes:
    """Compact JSON of ``value``, also when it holds text UTF-8 cannot carry: a refused
    event keeps the lone surrogate that got it refused, and its dead letter must still be
    written. orjson where it can; else the standard library with ``\\uXXXX`` escapes
    (ASCII, which :func:`loads` reads back to the same text). Raises ``TypeError`` /
    ``ValueError`` for values no JSON holds (NaN, :data:`NOT_JSON`)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
