"""``dataclass``, ``field``, ``fields`` and ``replace`` that behave as the standard library's, built cheaply.

Every ``stimscript check`` imports the contract modules and the checker, and those define two dozen
dataclasses. The standard ``@dataclass`` compiles five or six functions per class from source and its module
imports :mod:`inspect`; together that was about a third of a small file's check. This module builds the
same classes without either:

* ``__init__`` is still compiled from the source the standard library would write (one small function, so
  keyword arguments, defaults and error messages are the same), on its first lookup (a call,
  ``inspect.signature``, ``cls.__init__``): a check builds most classes without ever calling theirs; for the
  package's own classes that source comes compiled in advance (stimscript/valueclass_inits.py, generated, kept
  current by a test), so a check compiles nothing; ``__repr__``, ``__eq__``, ``__hash__``
  and a frozen class's ``__setattr__``/``__delattr__`` are closures over the field names with the standard
  methods' results (the field values compared and hashed as one tuple, the same repr, the same
  ``FrozenInstanceError``);
* the class gets the same class attributes (defaults, ``__match_args__``, a generated ``__doc__``), and
  ``__slots__`` as ``slots=True`` makes them;
* ``__dataclass_fields__`` and ``__dataclass_params__`` are made on first use, by the standard library from
  the same annotations and defaults, so :func:`dataclasses.fields`, :func:`dataclasses.replace`,
  :func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` see an ordinary dataclass.

:func:`fields` and :func:`replace` here do what the standard ones do for these classes without importing
:mod:`dataclasses` (``fields`` returns this module's :class:`Field`, with the standard attribute names).
Whatever this module does not build itself (inheritance between dataclasses, ``order``, ``unsafe_hash``,
``kw_only``, ``init=False`` fields, ``__post_init__``, ``ClassVar``/``InitVar`` fields, a metaclass, frozen
classes with slots) is handed to the standard ``dataclasses.dataclass`` unchanged.
tests/test_valueclass.py compares every class of the package, and generated ones, with the standard library.
"""
from __future__ import annotations

import sys
from _thread import get_ident
from operator import attrgetter
from types import FunctionType, MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers see the standard library's functions, with the same signatures
    from dataclasses import dataclass, field, fields, replace
    from typing import Optional
else:
    __all__ = ["dataclass", "field", "fields", "replace", "Field", "MISSING"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: no default given (as ``dataclasses.MISSING``)
MISSING = _Missing()


class _Factory:
    """The default of a parameter whose field has a ``default_factory`` (shown as the standard library's)."""

    def __repr__(self) -> str:
        return "<factory>"


_HAS_DEFAULT_FACTORY = _Factory()
_EMPTY_METADATA: MappingProxyType = MappingProxyType({})


class Field:
    """One field: what ``field(...)`` was given, plus its name and annotation once its class is built."""

    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "metadata",
                 "kw_only")

    def __init__(self, default, default_factory, init, repr, hash, compare, metadata, kw_only):
        self.name = None
        self.type = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare
        self.metadata = metadata
        self.kw_only = kw_only

    def __repr__(self) -> str:
        return (f"Field(name={self.name!r},type={self.type!r},default={self.default!r},"
                f"default_factory={self.default_factory!r},init={self.init!r},repr={self.repr!r},"
                f"hash={self.hash!r},compare={self.compare!r},metadata={self.metadata!r},kw_only={self.kw_only!r})")

    def _standard(self):
        """The same field for the standard library."""
        import dataclasses

        kwargs = {"init": self.init, "repr": self.repr, "hash": self.hash, "compare": self.compare,
                  "metadata": dict(self.metadata) if self.metadata else None}
        if self.kw_only is not MISSING:
            kwargs["kw_only"] = self.kw_only
        if self.default is not MISSING:
            kwargs["default"] = self.default
        if self.default_factory is not MISSING:
            kwargs["default_factory"] = self.default_factory
        return dataclasses.field(**kwargs)


class _Spec:
    """What one class was built from (for :func:`fields`, :func:`replace` and the lazy standard fields)."""

    __slots__ = ("fields", "init_names", "params", "annotations", "defaults")

    def __init__(self, fields, params, annotations, defaults):
        self.fields = fields
        self.init_names = tuple([f.name for f in fields])
        self.params = params
        self.annotations = annotations
        self.defaults = defaults


#: class -> how it was built (classes this module built; others are the standard library's)
_SPECS: dict = {}

def _special_annotation(annotation) -> bool:
    """Whether an annotation may be ``ClassVar``, ``InitVar`` or ``KW_ONLY`` (then the standard library
    decides)."""
    if not isinstance(annotation, str):
        return not isinstance(annotation, type) or annotation.__module__ in ("typing", "dataclasses")
    if "ClassVar" in annotation or "InitVar" in annotation:
        return True
    # the head (``KW_ONLY`` of ``dataclasses.KW_ONLY``) is worked out only when the text has the word
    return "KW_ONLY" in annotation and annotation.lstrip().split("[", 1)[0].rsplit(".", 1)[-1].strip() == "KW_ONLY"


def _standard_dataclass(cls, params):
    import dataclasses

    for name, value in list(cls.__dict__.items()):
        if isinstance(value, Field):
            setattr(cls, name, value._standard())
    return dataclasses.dataclass(cls, **params)


def _build_plainly(cls, params) -> bool:
    """Whether this module builds ``cls`` itself (else the standard library does)."""
    if params["order"] or params["unsafe_hash"] or params["kw_only"] or params["weakref_slot"]:
        return False
    if params["slots"] and (params["frozen"] or "__slots__" in cls.__dict__ or cls.__bases__ != (object,)):
        return False
    if type(cls) is not type or hasattr(cls, "__post_init__"):
        return False
    if cls.__module__ not in sys.modules:
        return False
    for base in cls.__mro__[1:]:
        if "__dataclass_fields__" in base.__dict__ or base in _SPECS:
            return False
    namespace = cls.__dict__
    annotations = namespace.get("__annotations__", {})
    seen_default = False
    for name, annotation in annotations.items():
        if _special_annotation(annotation) or name == "self":
            return False
        value = namespace.get(name, MISSING)
        if isinstance(value, Field):
            if not value.init or value.kw_only is True:
                return False
            default = value.default
            has_default = default is not MISSING or value.default_factory is not MISSING
        else:
            default = value
            has_default = value is not MISSING
        if default is not MISSING and default.__class__.__hash__ is None:
            return False   # a mutable default: the standard library raises its error
        if has_default:
            seen_default = True
        elif seen_default:
            return False   # a field without a default after one with: the standard library's TypeError
    for name, value in namespace.items():
        if isinstance(value, Field) and name not in annotations:
            return False
    if params["frozen"] and ("__setattr__" in namespace or "__delattr__" in namespace):
        return False
    return True


def _param_text(f: Field) -> str:
    """The parameter as ``inspect.signature`` shows it (the class's generated ``__doc__``)."""
    text = f"{f.name}: {f.type!r}"
    if f.default is not MISSING:
        return f"{text} = {f.default!r}"
    if f.default_factory is not MISSING:
        return f"{text} = <factory>"
    return text


def _init_locals(flds: list) -> dict:
    """The parameters of the ``__create_fn__`` of :func:`_init_source` and their values (the defaults)."""
    local = {"MISSING": MISSING, "_HAS_DEFAULT_FACTORY": _HAS_DEFAULT_FACTORY, "__dataclass_builtins_object__": object}
    for f in flds:
        if f.default_factory is not MISSING:
            local[f"_dflt_{f.name}"] = f.default_factory
        elif f.default is not MISSING:
            local[f"_dflt_{f.name}"] = f.default
    return local


def _init_source(flds: list, frozen: bool) -> str:
    """The source the standard library writes for the ``__init__`` of these fields: a ``__create_fn__`` that
    takes :func:`_init_locals` and returns it."""
    params, body = [], []
    for f in flds:
        name = f.name
        if f.default_factory is not MISSING:
            params.append(f"{name}=_HAS_DEFAULT_FACTORY")
            value = f"_dflt_{name}() if {name} is _HAS_DEFAULT_FACTORY else {name}"
        elif f.default is not MISSING:
            params.append(f"{name}=_dflt_{name}")
            value = name
        else:
            params.append(name)
            value = name
        body.append(f"__dataclass_builtins_object__.__setattr__(self,{name!r},{value})" if frozen
                    else f"self.{name}={value}")
    return (f"def __create_fn__({', '.join(_init_locals(flds))}):\n def __init__({','.join(['self', *params])}):\n"
            + "\n".join(f"  {line}" for line in body or ["pass"]) + "\n return __init__")


def _init_key(flds: list, frozen: bool) -> tuple:
    """What :func:`_init_source` depends on, in short: frozen, and each field's name and whether it has a
    default factory (2), a default (1) or neither (0)."""
    return frozen, tuple((f.name, 2 if f.default_factory is not MISSING else 1 if f.default is not MISSING else 0)
                         for f in flds)


#: :func:`_init_key` -> the ``__create_fn__`` compiled from its source, from stimscript/valueclass_inits.py
#: (None until first needed)
_PRECOMPILED: Optional[dict] = None


def _precompiled(key: tuple) -> Optional[FunctionType]:
    """The ``__create_fn__`` of the source of ``key`` (:func:`_init_key`), when stimscript/valueclass_inits.py
    has it (the package's own classes): read from that module's cached bytecode, which costs a small part of
    compiling the source (about 60 µs a class)."""
    global _PRECOMPILED
    if _PRECOMPILED is None:
        from .valueclass_inits import CREATORS

        _PRECOMPILED = CREATORS
    return _PRECOMPILED.get(key)


def _make_init(cls, flds: list, frozen: bool, globals_: dict):
    """``__init__`` compiled from the source the standard library writes for these fields, or made by that
    source's ``__create_fn__`` compiled in advance (:func:`_precompiled`; the ``__init__`` it returns gets the
    file name and first line of the source compiled alone: the same function)."""
    local = _init_locals(flds)
    creator = _precompiled(_init_key(flds, frozen))
    if creator is None:
        namespace: dict = {}
        exec(_init_source(flds, frozen), globals_, namespace)
        fn = namespace["__create_fn__"](**local)
    else:
        fn = FunctionType(creator.__code__, globals_)(**local)
        fn.__code__ = fn.__code__.replace(co_filename="<string>", co_firstlineno=2)
    annotations = {f.name: f.type for f in flds}
    annotations["return"] = None
    fn.__annotations__ = annotations
    fn.__qualname__ = f"{cls.__qualname__}.__init__"
    return fn


class _LazyInit:
    """A class's ``__init__`` until it is first looked up: then compiled by :func:`_make_init` and put in its
    place. Compiling is most of what building a class costs, and a check builds most of the package's
    classes without ever calling their ``__init__`` (their instances come from the compiled twins, or never);
    every lookup (a call, ``inspect.signature``, ``cls.__init__``) sees the compiled function."""

    __slots__ = ("flds", "frozen", "globals")

    def __init__(self, flds: list, frozen: bool, globals_: dict) -> None:
        self.flds = flds
        self.frozen = frozen
        self.globals = globals_

    def __get__(self, obj, owner=None):
        # the class holding this descriptor: ``owner`` or a base of it (a subclass, ``super()``); with
        # ``slots=True`` not the class it was made for, which the slotted copy replaced
        cls = next(k for k in (owner or type(obj)).__mro__ if k.__dict__.get("__init__") is self)
        fn = _make_init(cls, self.flds, self.frozen, self.globals)
        type.__setattr__(cls, "__init__", fn)
        return fn if obj is None else fn.__get__(obj, owner)


def _make_repr(cls, names: tuple):
    running: set = set()

    def __repr__(self):
        key = id(self), get_ident()
        if key in running:
            return "..."
        running.add(key)
        try:
            return (self.__class__.__qualname__ + "("
                    + ", ".join([f"{name}={getattr(self, name)!r}" for name in names]) + ")")
        finally:
            running.discard(key)

    __repr__.__qualname__ = f"{cls.__qualname__}.__repr__"
    return __repr__


def _key(names: tuple):
    """The field values of an object as one tuple (what the standard methods compare and hash)."""
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)


def _make_eq(cls, names: tuple):
    key = _key(names)

    def __eq__(self, other):
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    __eq__.__qualname__ = f"{cls.__qualname__}.__eq__"
    return __eq__


def _make_hash(cls, names: tuple):
    key = _key(names)

    def __hash__(self):
        return hash(key(self))

    __hash__.__qualname__ = f"{cls.__qualname__}.__hash__"
    return __hash__


def _frozen_error(message: str) -> Exception:
    from dataclasses import FrozenInstanceError

    return FrozenInstanceError(message)


def _make_frozen(cls, names: tuple):
    def __setattr__(self, name, value):
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self, name):
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


class _StandardAttribute:
    """``__dataclass_fields__`` / ``__dataclass_params__``, made by the standard library on first use."""

    def __init__(self, cls, attribute: str) -> None:
        self.cls = cls
        self.attribute = attribute

    def __get__(self, obj, owner=None):
        standard = _standard_twin(self.cls)
        for attribute in ("__dataclass_fields__", "__dataclass_params__"):
            type.__setattr__(self.cls, attribute, getattr(standard, attribute))
        return getattr(standard, self.attribute)


def _standard_twin(cls):
    """The standard library's dataclass built from the same annotations, defaults and parameters."""
    import dataclasses

    spec = _SPECS[cls]
    namespace: dict = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                       "__annotations__": dict(spec.annotations)}
    for name, value in spec.defaults.items():
        namespace[name] = value._standard() if isinstance(value, Field) else value
    params = {k: spec.params[k] for k in ("init", "repr", "eq", "order", "unsafe_hash", "frozen", "match_args",
                                          "kw_only", "slots")}
    return dataclasses.dataclass(type(cls.__name__, (), namespace), **params)


def _set_new(cls, name: str, value) -> None:
    if name not in cls.__dict__:
        setattr(cls, name, value)


def _process(cls, params: dict):
    if not _build_plainly(cls, params):
        return _standard_dataclass(cls, params)
    namespace = cls.__dict__
    annotations = dict(namespace.get("__annotations__", {}))
    defaults: dict = {}
    flds = []
    for name, annotation in annotations.items():
        value = namespace.get(name, MISSING)
        if isinstance(value, Field):
            f = value
            defaults[name] = value
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
            if f.kw_only is MISSING:
                f.kw_only = False
            f.metadata = MappingProxyType(f.metadata) if f.metadata is not None else _EMPTY_METADATA
        else:   # a plain annotation (with its default): what ``field()`` would make, already complete
            f = Field(value, MISSING, True, True, None, True, _EMPTY_METADATA, False)
            if value is not MISSING:
                defaults[name] = value
        f.name = name
        f.type = annotation
        flds.append(f)
    frozen = params["frozen"]
    # as the standard library decides it, on the class as written (before an ``__eq__`` is added below): a
    # ``__hash__ = None`` without an ``__eq__`` of its own is the class's explicit choice and is kept
    class_hash = namespace.get("__hash__", MISSING)
    explicit_hash = not (class_hash is MISSING or (class_hash is None and "__eq__" in namespace))
    spec = _Spec(tuple(flds), params, annotations, defaults)
    names = spec.init_names
    if params["init"]:
        _set_new(cls, "__init__", _LazyInit(flds, frozen, sys.modules[cls.__module__].__dict__))
    if params["repr"]:
        _set_new(cls, "__repr__", _make_repr(cls, tuple([f.name for f in flds if f.repr])))
    if params["eq"]:
        _set_new(cls, "__eq__", _make_eq(cls, tuple([f.name for f in flds if f.compare])))
    if params["eq"] and not explicit_hash:
        if frozen:
            cls.__hash__ = _make_hash(cls, tuple([f.name for f in flds if (f.compare if f.hash is None else f.hash)]))
        else:
            cls.__hash__ = None
    if not cls.__doc__:
        cls.__doc__ = f"{cls.__name__}({', '.join([_param_text(f) for f in flds])})"
    if params["match_args"]:
        _set_new(cls, "__match_args__", names)
    if params["slots"]:
        cls = _with_slots(cls, names)
    if frozen:
        setter, deleter = _make_frozen(cls, names)
        cls.__setattr__ = setter
        cls.__delattr__ = deleter
    for attribute in ("__dataclass_fields__", "__dataclass_params__"):
        type.__setattr__(cls, attribute, _StandardAttribute(cls, attribute))
    _SPECS[cls] = spec
    return cls


def _with_slots(cls, names: tuple):
    """The class again with ``__slots__`` (as ``dataclass(slots=True)`` makes it: a new class)."""
    namespace = dict(cls.__dict__)
    namespace["__slots__"] = names
    for name in names:
        namespace.pop(name, None)
    namespace.pop("__dict__", None)
    namespace.pop("__weakref__", None)
    qualname = getattr(cls, "__qualname__", None)
    new = type(cls)(cls.__name__, cls.__bases__, namespace)
    if qualname is not None:
        new.__qualname__ = qualname
    return new


if not TYPE_CHECKING:
    def field(*, default=MISSING, default_factory=MISSING, init=True, repr=True, hash=None,
              compare=True, metadata=None, kw_only=MISSING):
        """As :func:`dataclasses.field`."""
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        return Field(default, default_factory, init, repr, hash, compare, metadata, kw_only)

    def dataclass(cls=None, /, *, init=True, repr=True, eq=True, order=False,
                  unsafe_hash=False, frozen=False, match_args=True, kw_only=False, slots=False,
                  weakref_slot=False):
        """As :func:`dataclasses.dataclass` (see the module docstring for how it is built)."""
        params = {"init": init, "repr": repr, "eq": eq, "order": order, "unsafe_hash": unsafe_hash,
                  "frozen": frozen, "match_args": match_args, "kw_only": kw_only, "slots": slots,
                  "weakref_slot": weakref_slot}

        def wrap(cls):
            return _process(cls, params)

        return wrap if cls is None else wrap(cls)

    def fields(class_or_instance):
        """As :func:`dataclasses.fields`; this module's :class:`Field` for the classes it built."""
        cls = class_or_instance if isinstance(class_or_instance, type) else type(class_or_instance)
        spec = _SPECS.get(cls)
        if spec is None:
            import dataclasses

            return dataclasses.fields(class_or_instance)
        return spec.fields

    def replace(obj, /, **changes):
        """As :func:`dataclasses.replace`: a new object with ``changes``, its other fields from ``obj``."""
        spec = _SPECS.get(obj.__class__)
        if spec is None:
            import dataclasses

            return dataclasses.replace(obj, **changes)
        for name in spec.init_names:
            if name not in changes:
                changes[name] = getattr(obj, name)
        return obj.__class__(**changes)
