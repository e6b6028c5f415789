"""The metaclasses that make every subclass of a base a frozen, slotted dataclass, so an
event or a command is declared by its class line and fields alone (no decorator each).

:class:`Frozen` (events: fields in declaration order, positional or by keyword) is the
metaclass of :class:`~pipeline.domain.event.DomainEvent`; :class:`FrozenKwOnly` (keyword
only, so a subclass may add required fields after defaults) that of
:class:`~pipeline.domain.command.Command`. A subclass is exactly what
``@dataclass(frozen=True, slots=True[, kw_only=True])`` on it would make;
``typing.dataclass_transform`` tells type checkers so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, dataclass_transform

__all__ = ["Frozen", "FrozenKwOnly"]


@dataclass_transform(frozen_default=True)
class Frozen(type):
    """Applies ``dataclass(frozen=True, slots=True)`` to each class it builds, except one
    that declares ``__slots__`` itself: the base (which has no fields) and the copy that
    ``slots=True`` builds of each dataclass."""

    kw_only: ClassVar[bool] = False

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], /, **kwargs: Any
    ) -> Any:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if "__slots__" in namespace:
            return cls
        return dataclass(frozen=True, slots=True, kw_only=mcs.kw_only)(cls)


@dataclass_transform(frozen_default=True, kw_only_default=True)
class FrozenKwOnly(Frozen):
    """:class:`Frozen` with ``kw_only=True``."""

    kw_only = True
