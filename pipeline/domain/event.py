"""The base :class:`DomainEvent`: what makes a dataclass an event of the event store.

An aggregate's event is declared as::

    class UserCreated(DomainEvent, version=2):
        user_id: str
        ...

Each subclass is a frozen, slotted dataclass (its metaclass,
:class:`~pipeline.domain.frozen.Frozen`, applies the decorator) whose fields are exactly the
fields of the ``data`` record of its Avro schema
``schemas/avro/<aggregate_type>/<event_type>.v<version>.avsc`` (``pipeline.domain.event_data``
maps one to the other). Events are never changed once published: a change means a new
schema version, so a new ``version=N`` here, plus an upcaster (``schemas.upcasting``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.domain.frozen import Frozen

__all__ = ["DomainEvent"]


class DomainEvent(metaclass=Frozen):
    """Base of every domain event. A subclass is declared with ``version=N`` (the schema
    version it writes, >= 1) and gets the class attributes the envelope carries:
    ``event_type`` (the class name) and ``schema_version`` (``N``).

    Raises TypeError when a subclass gives no version or one < 1.
    """

    __slots__ = ()  # so that a slots=True event has no __dict__

    event_type: ClassVar[str]
    schema_version: ClassVar[int]

    def __init_subclass__(cls, /, version: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if version is None:
            # @dataclass(slots=True) builds the class a second time, without class
            # keywords: the first build already set both attributes in its namespace
            if "schema_version" not in cls.__dict__:
                raise TypeError(f"{cls.__name__}: declare it with DomainEvent, version=N")
            return
        if not isinstance(version, int) or version < 1:
            raise TypeError(f"{cls.__name__}: version must be an int >= 1, got {version!r}")
        cls.event_type = cls.__name__
        cls.schema_version = version
