"""The JSON-safe table form of a state dataclass, field by field, and back: what the
aggregates' ``state_to_dict``/``state_from_dict`` store in their Faust tables.

``to_table`` writes each field under its name: a datetime as its ISO-8601 string, an enum
as its value, a tuple as a list, a mapping as a dict, a nested dataclass as its own table
form; anything else (str, int, bool, None) as it is. ``from_table`` reads it back by the
field's declared type. A state whose table form is not field by field (a mapping stored as
a list, a value with a form of its own) writes those fields itself.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = ["from_table", "to_table"]

T = TypeVar("T")


def to_table(state: Any) -> dict[str, Any]:
    """``{field name: JSON-safe value}`` of the dataclass instance ``state``, in field order."""
    return {f.name: _out(getattr(state, f.name)) for f in dataclasses.fields(state)}


def from_table(cls: type[T], d: Mapping[str, Any], **given: Any) -> T:
    """Inverse of :func:`to_table`: an instance of the dataclass ``cls``.

    ``given`` are fields the caller has read itself (they are not looked up in ``d``). A key
    missing from ``d`` takes the field's default (a form stored before the field existed);
    without one it raises ``KeyError``; a malformed value raises ``ValueError``.
    """
    kwargs = dict(given)
    for name, hint, required in _fields_of(cls):
        if name in kwargs:
            continue
        if name in d:
            kwargs[name] = _in(hint, d[name])
        elif required:
            raise KeyError(name)
    return cls(**kwargs)


@functools.cache
def _fields_of(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """(name, declared type, required) of each ``__init__`` field of the dataclass ``cls``.
    Cached: ``typing.get_type_hints`` evaluates every annotation on each call, and the
    command agents read a state per command (12 % of the commands process's GIL time
    went to it, py-spy under UpdateUser load, 2026-12-07)."""
    hints = get_type_hints(cls)
    return tuple(
        (f.name, hints[f.name],
         f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        for f in dataclasses.fields(cls)
        if f.init
    )  # fmt: skip


def _out(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_out(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _out(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_table(value)
    return value


def _in(hint: Any, value: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):  # X | None
        if value is None:
            return None
        (hint,) = (a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        return tuple(_in(args[0], v) for v in value)
    if origin is Mapping or origin is dict:
        return {k: _in(args[1], v) for k, v in value.items()}
    if hint is datetime:
        return datetime.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Enum | bool | int):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        return from_table(hint, value)
    return value
