"""Small immutable records for the checker and lowering, written as plain classes.

``stimscript check`` imports the checker on every run, and building a dataclass at import (several
functions compiled per class) costs more than checking a small protocol. A :class:`Record` subclass lists its
fields in ``__slots__`` (the positional order of its ``__init__``, which sets them with :func:`init`; a
subclass that adds fields in front says so in ``_fields``) and
gets what a frozen dataclass gives: field-wise equality and hash (over ``_compare``: every field unless
the class says otherwise), a repr, assignment refused, pickling.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar


#: sets a field of a record in its ``__init__`` (records refuse ``self.x = ...``)
init = object.__setattr__


class Record:
    """Immutable record: ``__slots__`` are its fields (in ``__init__`` order), ``_compare`` those that
    equality, hash and repr use."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _compare: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_fields" not in cls.__dict__:   # a class may order its fields as its __init__ takes them
            cls._fields = tuple(f for base in reversed(cls.__mro__) for f in base.__dict__.get("__slots__", ()))
        if "_compare" not in cls.__dict__:
            cls._compare = cls._fields

    def _key(self) -> tuple:
        return tuple([getattr(self, f) for f in self._compare])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"{self.__class__.__qualname__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self._compare)})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a {self.__class__.__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a {self.__class__.__name__}")

    def __reduce__(self) -> tuple:
        return (self.__class__, tuple(getattr(self, f) for f in self._fields))
