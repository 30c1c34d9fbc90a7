"""stimscript.valueclass builds classes the standard library's ``dataclasses`` would build, without its cost.

The oracle is the standard library itself: every class of the package that valueclass built, and classes
generated here from random field lists, are compared with ``dataclasses.dataclass`` applied to the same class
text: fields, signatures, defaults, docs, equality, hashing, repr, frozenness, ``replace``, ``asdict``, pickling.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import itertools
import pickle
import re
import sys
import types
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript import valueclass

ROOT = Path(__file__).resolve().parents[1]


FIELD_ATTRS = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "metadata", "kw_only")

#: the modules whose classes valueclass builds (the contract and what ``stimscript check`` imports)
MODULES = ["stimscript.spans", "stimscript.errors", "stimscript.profile", "stimscript.units", "stimscript.pulses",
           "stimscript.compiler.model", "stimscript.compiler.atlas", "stimscript.compiler.energy",
           "stimscript.compiler.overlap", "stimscript.compiler.delivered"]


def _package_classes() -> list[type]:
    for name in MODULES:
        importlib.import_module(name)
    return sorted(valueclass._SPECS, key=lambda c: (c.__module__, c.__qualname__))


def _field_values(f) -> tuple:
    std_missing = dataclasses.MISSING
    out = []
    for attr in FIELD_ATTRS:
        value = getattr(f, attr)
        if value is std_missing or value is valueclass.MISSING:
            value = "MISSING"
        if attr == "metadata":
            value = dict(value) if value else {}
        out.append(value)
    return tuple(out)


def _same_class_shape(ours: type, std: type, source_doc: bool) -> None:
    assert dataclasses.is_dataclass(ours)
    assert [_field_values(f) for f in dataclasses.fields(ours)] == [_field_values(f) for f in dataclasses.fields(std)]
    assert [_field_values(f) for f in valueclass.fields(ours)] == [_field_values(f) for f in dataclasses.fields(std)]
    assert repr(ours.__dataclass_params__) == repr(std.__dataclass_params__)
    assert str(inspect.signature(ours)) == str(inspect.signature(std))
    assert str(inspect.signature(ours.__init__)) == str(inspect.signature(std.__init__))
    assert ours.__init__.__defaults__ == std.__init__.__defaults__ or (
        [repr(d) for d in ours.__init__.__defaults__ or ()] == [repr(d) for d in std.__init__.__defaults__ or ()])
    assert ours.__init__.__annotations__ == std.__init__.__annotations__
    assert ours.__init__.__qualname__ == std.__init__.__qualname__
    assert ours.__match_args__ == std.__match_args__
    assert getattr(ours, "__slots__", None) == getattr(std, "__slots__", None)
    assert (ours.__hash__ is None) == (std.__hash__ is None)
    assert ("__hash__" in ours.__dict__) == ("__hash__" in std.__dict__)
    for name in ("__eq__", "__repr__", "__setattr__", "__delattr__"):
        assert (name in ours.__dict__) == (name in std.__dict__), name
        if name in ours.__dict__:
            assert ours.__dict__[name].__qualname__ == std.__dict__[name].__qualname__
    for f in dataclasses.fields(std):   # class attributes: the defaults (a factory's field has none)
        assert (f.name in ours.__dict__) == (f.name in std.__dict__) or getattr(std, "__slots__", None), f.name
        if f.name in std.__dict__ and not isinstance(std.__dict__[f.name], types.MemberDescriptorType):
            assert ours.__dict__[f.name] == std.__dict__[f.name]
    if not source_doc:
        assert ours.__doc__ == std.__doc__


def _standard_of(cls: type) -> type:
    """The standard library's dataclass of the same annotations, defaults and parameters as ``cls``."""
    return valueclass._standard_twin(cls)


@pytest.mark.parametrize("cls", _package_classes(), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_package_classes_are_the_standard_librarys(cls):
    std = _standard_of(cls)
    own_doc = cls.__doc__ is not None and not cls.__doc__.startswith(cls.__name__ + "(")
    _same_class_shape(cls, std, source_doc=own_doc)


def _instances(path: Path):
    """Instances of the package's value classes from a real check (trains, segments, uses, spans...)."""
    from stimscript import load

    proto = load(path)
    found: dict[type, list] = {}
    seen: set[int] = set()

    def walk(obj, depth=0):
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if type(obj) in valueclass._SPECS:
            found.setdefault(type(obj), []).append(obj)
            for f in valueclass.fields(obj):
                walk(getattr(obj, f.name), depth + 1)
        elif isinstance(obj, (list, tuple)):
            for item in obj[:50]:
                walk(item, depth + 1)
        elif isinstance(obj, dict):
            for item in list(obj.values())[:50]:
                walk(item, depth + 1)

    for session in (1, 2):
        walk(proto.resolve(session))
    walk(list(getattr(proto, "warnings", ())))
    walk(proto.profile)
    return found


def test_instances_from_a_real_check_behave_as_the_standard_librarys():
    found = {}
    for path in sorted((ROOT / "examples").glob("*.stim"))[:4]:
        for cls, objs in _instances(path).items():
            found.setdefault(cls, []).extend(objs)
    assert len(found) >= 4, sorted(c.__name__ for c in found)
    for cls, objs in found.items():
        std = _standard_of(cls)
        twins = [std(**{f.name: getattr(o, f.name) for f in valueclass.fields(o)}) for o in objs]
        for o, t in zip(objs, twins):
            assert repr(o) == repr(t)
            assert dataclasses.asdict(o) == dataclasses.asdict(t)
            if "__hash__" in cls.__dict__ and cls.__hash__ is not None:   # a generated hash
                assert hash(o) == hash(t)
        for (a, ta), (b, tb) in itertools.islice(itertools.combinations(zip(objs, twins), 2), 200):
            assert (a == b) == (ta == tb)


# --- generated classes --------------------------------------------------------------------------------------
NAMES = ["a", "b", "rate", "span", "extra", "n", "label", "kind"]
DEFAULTS = ["0", "1", "''", "'x'", "None", "Fraction(1, 3)", "(1, 2)", "-5"]


@st.composite
def class_texts(draw):
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=6))
    params = {"frozen": draw(st.booleans()), "eq": draw(st.booleans()), "repr": draw(st.booleans())}
    if not params["frozen"]:
        params["slots"] = draw(st.booleans())
    lines, defaulted = [], False
    for name in names:
        kind = draw(st.sampled_from(["plain", "default", "field", "factory"] if not defaulted else
                                    ["default", "field", "factory"]))
        ann = draw(st.sampled_from(["int", "str", "Optional[int]", "tuple[int, ...]", "Fraction", "dict"]))
        if kind == "plain":
            lines.append(f"    {name}: {ann}")
            continue
        defaulted = True
        if kind == "default":
            lines.append(f"    {name}: {ann} = {draw(st.sampled_from(DEFAULTS))}")
        else:
            opts = [f"{k}={draw(st.booleans())}" for k in ("repr", "compare") if draw(st.booleans())]
            if draw(st.booleans()):
                opts.append(f"hash={draw(st.sampled_from(['None', 'True', 'False']))}")
            if kind == "factory":
                opts.insert(0, f"default_factory={draw(st.sampled_from(['dict', 'list', 'tuple']))}")
            else:
                opts.insert(0, f"default={draw(st.sampled_from(DEFAULTS))}")
            lines.append(f"    {name}: {ann} = field({', '.join(opts)})")
    doc = draw(st.booleans())
    body = (['    """A generated class."""'] if doc else []) + (lines or ["    pass"])
    args = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"@dataclass({args})\nclass Gen:\n" + "\n".join(body) + "\n", doc


_counter = itertools.count()


def _build(text: str, decorator_module: str) -> type:
    name = f"_valueclass_gen_{next(_counter)}"
    module = types.ModuleType(name)
    sys.modules[name] = module
    header = (f"from __future__ import annotations\nfrom fractions import Fraction\nfrom typing import Optional\n"
              f"from {decorator_module} import dataclass, field\n")
    exec(compile(header + text, f"<{name}>", "exec"), module.__dict__)
    return module.Gen


def _values(cls: type, draw_ints) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = draw_ints.pop() if draw_ints else 0
    return out


def _outcome(fn, *args):
    """What calling ``fn`` gives: its value, or the type and message of what it raised."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:   # noqa: BLE001 - the exception is what is compared
        return (type(exc), str(exc))


@settings(max_examples=150, deadline=None)
@given(class_texts(), st.lists(st.lists(st.integers(-3, 3), min_size=6, max_size=6), min_size=1, max_size=4))
def test_generated_classes_match_the_standard_library(spec, value_rows):
    text, doc = spec
    ours = _build(text, "stimscript.valueclass")
    std = _build(text, "dataclasses")
    assert type(ours) is type
    _same_class_shape(ours, std, source_doc=doc)
    required = [f.name for f in dataclasses.fields(std)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    objs, twins = [], []
    for row in value_rows:
        kwargs = {name: row[i] for i, name in enumerate(required)}
        o, t = ours(**kwargs), std(**kwargs)
        objs.append(o)
        twins.append(t)
        if "__repr__" in std.__dict__:
            assert repr(o) == repr(t)
        else:
            assert "__repr__" not in ours.__dict__ and repr(o).startswith(f"<{ours.__module__}.Gen object at ")
        assert dataclasses.asdict(o) == dataclasses.asdict(t)
        assert dataclasses.astuple(o) == dataclasses.astuple(t)
        if std.__hash__ is not None and "__hash__" in std.__dict__:
            assert _outcome(hash, o) == _outcome(hash, t)
        # replace: the stdlib's and ours give the same object
        changes = {name: row[-1] for name in required[:1]}
        r1, r2 = valueclass.replace(o, **changes), dataclasses.replace(o, **changes)
        assert dataclasses.asdict(r1) == dataclasses.asdict(r2) == dataclasses.asdict(dataclasses.replace(t, **changes))
        # assignment: refused alike when frozen, allowed alike when not
        for name in [f.name for f in dataclasses.fields(std)][:1] + ["unknown"]:
            assert _outcome(setattr, o, name, 7) == _outcome(setattr, t, name, 7)
            assert _outcome(getattr, o, name) == _outcome(getattr, t, name)
        # pickling and copying keep the value
        again = pickle.loads(pickle.dumps(o))
        assert dataclasses.asdict(again) == dataclasses.asdict(o)
        assert dataclasses.asdict(copy.deepcopy(o)) == dataclasses.asdict(o)
    for (a, ta), (b, tb) in itertools.combinations(zip(objs, twins), 2):
        assert (a == b) == (ta == tb)
        assert (a != b) == (ta != tb)


@pytest.mark.parametrize("params", ["", "(frozen=True)", "(eq=False)", "(frozen=True, eq=False)"])
@pytest.mark.parametrize("body", [
    "    __hash__ = None\n",                                              # explicit: no hash, kept
    "    def __hash__(self):\n        return 7\n",                         # explicit: its own hash, kept
    "    def __eq__(self, other):\n        return True\n",                 # Python itself sets __hash__ None
    "    __hash__ = None\n    def __eq__(self, other):\n        return True\n",
])
def test_an_explicit_hash_is_decided_as_the_standard_library_does(params, body):
    """Whether a class's own ``__hash__`` (or ``__hash__ = None``) stands is decided on the class as written,
    before the generated ``__eq__`` is added (a ``__hash__ = None`` without an ``__eq__`` was overwritten)."""
    text = f"@dataclass{params}\nclass Gen:\n    a: int = 1\n{body}"
    ours, std = _build(text, "stimscript.valueclass"), _build(text, "dataclasses")
    assert (ours.__hash__ is None) == (std.__hash__ is None)
    assert _outcome(hash, ours()) == _outcome(hash, std())
    assert _outcome(lambda: ours() == ours(), ) == _outcome(lambda: std() == std(), )


def test_recursive_repr_shows_dots_as_the_standard_librarys():
    text = "@dataclass\nclass Gen:\n    items: list = field(default_factory=list)\n"
    for module in ("stimscript.valueclass", "dataclasses"):
        cls = _build(text, module)
        obj = cls()
        obj.items.append(obj)
        assert repr(obj) == "Gen(items=[...])"


@pytest.mark.parametrize("text", [
    "@dataclass(order=True)\nclass Gen:\n    a: int\n",
    "@dataclass\nclass Gen:\n    a: ClassVar[int] = 1\n    b: int = 2\n",
    "@dataclass\nclass Gen:\n    a: int\n    def __post_init__(self):\n        self.a += 1\n",
    "@dataclass(frozen=True, slots=True)\nclass Gen:\n    a: int\n",
    "@dataclass\nclass Gen:\n    a: int = field(default=1, init=False)\n",
])
def test_what_it_does_not_build_is_the_standard_librarys(text):
    text = text.replace("ClassVar", "typing.ClassVar")
    ours = _build("import typing\n" + text, "stimscript.valueclass")
    std = _build("import typing\n" + text, "dataclasses")
    assert ours not in valueclass._SPECS
    assert "__dataclass_fields__" in ours.__dict__ and isinstance(ours.__dict__["__dataclass_fields__"], dict)
    _same_class_shape(ours, std, source_doc=False)


@pytest.mark.parametrize("text, error", [
    ("@dataclass\nclass Gen:\n    a: list = []\n", ValueError),
    ("@dataclass\nclass Gen:\n    a: int = 1\n    b: int\n", TypeError),
    ("@dataclass\nclass Gen:\n    a = field(default=1)\n", TypeError),
])
def test_mistakes_raise_the_standard_librarys_errors(text, error):
    with pytest.raises(error) as ours:
        _build(text, "stimscript.valueclass")
    with pytest.raises(error) as std:
        _build(text, "dataclasses")
    assert str(ours.value) == str(std.value)


def test_frozen_instances_refuse_assignment_with_the_standard_error():
    from stimscript.pulses import Train

    tr = Train(1, 0, 1, 1000, 500, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'cycles'"):
        tr.cycles = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'cycles'"):
        del tr.cycles  # type: ignore[misc]
    assert valueclass.replace(tr, cycles=3) == dataclasses.replace(tr, cycles=3) == Train(
        1, 0, 3, 1000, 500, 0, 0, 1, 1, 1, 1, 0)
    assert Train.__init__.__code__.co_filename == "<string>"
    assert pickle.loads(pickle.dumps(tr)) == tr and hash(pickle.loads(pickle.dumps(tr))) == hash(tr)
    assert Fraction(tr.amp_num, tr.amp_den) == tr.amplitude


SUBCLASS = """
class Sub(Gen):
    pass


class Calls(Gen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
"""


@pytest.mark.parametrize("params", ["frozen=True", "", "slots=True", "frozen=True, eq=False"])
@pytest.mark.parametrize("route", ["call", "subclass", "super", "signature", "bad-calls"])
def test_init_is_compiled_on_first_use_by_any_route(params, route):
    """``__init__`` is compiled when first looked up (most classes of a check never run it): whichever way it
    is first reached, it then is, and does, what the standard library's does."""
    text = f"@dataclass({params})\nclass Gen:\n    a: int\n    b: str = 'x'\n" + SUBCLASS
    ours, std = _build(text, "stimscript.valueclass"), _build(text, "dataclasses")
    assert not inspect.isfunction(ours.__dict__["__init__"])   # not compiled yet
    module_ours, module_std = sys.modules[ours.__module__], sys.modules[std.__module__]
    calls = [((1,), {}), ((), {"a": 2, "b": "y"}), ((), {}), ((1, "y", 3), {}), ((1,), {"c": 3}),
             ((1,), {"a": 1})]
    for cls_name in {"call": ["Gen"], "subclass": ["Sub", "Gen"], "super": ["Calls", "Gen"],
                     "signature": ["Gen"], "bad-calls": ["Gen", "Sub"]}[route]:
        o_cls, s_cls = getattr(module_ours, cls_name), getattr(module_std, cls_name)
        if route == "signature":
            assert str(inspect.signature(o_cls)) == str(inspect.signature(s_cls))
        for args, kwargs in (calls[::-1] if route == "bad-calls" else calls):
            o, s = _outcome(lambda c, a, k: c(*a, **k), o_cls, args, kwargs), \
                _outcome(lambda c, a, k: c(*a, **k), s_cls, args, kwargs)
            if o[0] == "ok":
                assert s[0] == "ok" and dataclasses.asdict(o[1]) == dataclasses.asdict(s[1])
                assert type(o[1]).__name__ == cls_name
            else:
                assert o == s
    assert inspect.isfunction(ours.__dict__["__init__"]) and ours.__init__.__code__.co_filename == "<string>"
    assert "__init__" not in module_ours.Sub.__dict__
    _same_class_shape(ours, std, source_doc=False)


PRECOMPILED_HEADER = '''# mypy: disable-error-code="no-redef"
"""The ``__init__`` sources of the value classes of the package, compiled with it (generated: do not edit).

stimscript.valueclass builds each ``__init__`` from the source the standard library would write; for the
package's own classes it takes the compiled code from here, read from the cached bytecode, instead of
compiling the text in every process. tests/test_valueclass.py fails when this file is out of date; rewrite it
with ``python tests/test_valueclass.py``. Every source defines ``__create_fn__`` (the name the standard
library gives it), hence the redefinitions mypy is told to allow.
"""
from __future__ import annotations

#: what the source depends on (stimscript.valueclass._init_key) -> its ``__create_fn__``
CREATORS: dict = {}
'''


def precompiled_source() -> str:
    """The text of stimscript/valueclass_inits.py: the ``__init__`` source of every class of :data:`MODULES`
    (each source once, in class order), each followed by its entry in ``CREATORS``."""
    texts: dict[tuple, str] = {}
    for cls in _package_classes():
        spec = valueclass._SPECS[cls]
        if cls.__module__ in MODULES and spec.params["init"]:
            flds, frozen = list(spec.fields), spec.params["frozen"]
            texts[valueclass._init_key(flds, frozen)] = valueclass._init_source(flds, frozen)
    return PRECOMPILED_HEADER + "".join(f"\n\n{text}\n\n\nCREATORS[{key!r}] = __create_fn__\n"
                                        for key, text in texts.items())


# --- the package's __init__ sources, compiled in advance (stimscript/valueclass_inits.py) --------------------------
def test_every_module_that_builds_value_classes_is_listed():
    """A module missing from MODULES would still work (its ``__init__`` compiled at run time), only
    slower, and the tests above would not see its classes."""
    folders = ["stimscript", "dsl", "compiler", "programs", "runtime", "drivers"]
    users = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if re.search(r"^from [.\w]*valueclass import [^\n]*\bdataclass\b", text, re.MULTILINE):
                parts = path.relative_to(ROOT).with_suffix("").parts
                users.add(".".join(parts if parts[0] == "stimscript" else ("stimscript", *parts)))
    assert users == set(MODULES)


def test_precompiled_inits_are_current():
    """The generated module holds exactly the ``__init__`` sources the package's classes have now."""
    from stimscript import valueclass_inits

    text = Path(valueclass_inits.__file__).read_text(encoding="utf-8")
    assert text == precompiled_source(), "stimscript/valueclass_inits.py is out of date: run python tests/test_valueclass.py"


@pytest.mark.parametrize("cls", _package_classes(), ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_a_precompiled_init_is_the_one_compiled_from_its_source(cls, monkeypatch):
    """The ``__init__`` made from the precompiled code equals, attribute for attribute, the one compiled from
    the source at run time (code, line numbers and file name, defaults, closure, globals, names)."""
    spec = valueclass._SPECS[cls]
    flds, frozen = list(spec.fields), spec.params["frozen"]
    module_globals = sys.modules[cls.__module__].__dict__
    assert valueclass._precompiled(valueclass._init_key(flds, frozen)) is not None
    ours = valueclass._make_init(cls, flds, frozen, module_globals)
    monkeypatch.setattr(valueclass, "_PRECOMPILED", {})
    compiled = valueclass._make_init(cls, flds, frozen, module_globals)
    a, b = ours.__code__, compiled.__code__
    assert a == b
    for attr in dir(b):
        if attr.startswith("co_") and not callable(getattr(b, attr)):
            assert getattr(a, attr) == getattr(b, attr), attr
    assert list(a.co_positions()) == list(b.co_positions())
    for attr in ("__name__", "__qualname__", "__module__", "__defaults__", "__kwdefaults__", "__annotations__",
                 "__doc__"):
        assert getattr(ours, attr) == getattr(compiled, attr), attr
    assert ours.__globals__ is compiled.__globals__ is module_globals
    assert [c.cell_contents for c in ours.__closure__ or ()] == [c.cell_contents for c in compiled.__closure__ or ()]


def test_every_precompiled_source_is_the_source_of_its_key():
    """Each entry of the generated module is filed under the key its source is made from: a class whose fields
    give that key gets exactly that source (so the shortcut never hands a class another class's ``__init__``)."""
    from stimscript import valueclass_inits

    text = Path(valueclass_inits.__file__).read_text(encoding="utf-8")
    for key in valueclass_inits.CREATORS:
        frozen, shape = key
        flds = []
        for name, kind in shape:
            f = valueclass.Field(valueclass.MISSING, valueclass.MISSING, True, True, None, True, None, False)
            f.name = name
            if kind == 2:
                f.default_factory = list
            elif kind == 1:
                f.default = 0
            flds.append(f)
        assert valueclass._init_key(flds, frozen) == key
        assert f"\n\n{valueclass._init_source(flds, frozen)}\n\n\nCREATORS[{key!r}] = __create_fn__\n" in text


def test_a_class_outside_the_package_compiles_its_init():
    text = "@dataclass(frozen=True)\nclass Gen:\n    zz_only_here: int\n    yy: str = 'q'\n"
    cls = _build(text, "stimscript.valueclass")
    spec = valueclass._SPECS[cls]
    assert valueclass._precompiled(valueclass._init_key(list(spec.fields), True)) is None
    assert cls(1).yy == "q" and cls.__init__.__code__.co_filename == "<string>"


if __name__ == "__main__":  # rewrites stimscript/valueclass_inits.py (after a change to a value class)
    (ROOT / "stimscript" / "valueclass_inits.py").write_text(precompiled_source(), encoding="utf-8")
