"""The dependency rules of docs/architecture.md, checked on every import statement of the package.

Stages import only downward: contract modules ← dsl ← compiler (with ext) ← programs ← drivers ← runtime ←
the package face (cli, commands, live display, sheet, plots, research exports). A contract module imports only
other contract modules. Imports inside functions and under ``TYPE_CHECKING`` count too: a lazy import is still
a dependency. The test reads the source with :mod:`ast` and never imports the package.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: leaf modules of ``stimscript/`` that every stage may use and that import nothing of the project but each other
CONTRACT = {"errors", "spans", "units", "profile", "pulses", "clock", "rounding", "suggest", "textsafe", "formatting", "inputs",
            "valueclass", "valueclass_inits", "twins",
            "atomicfile"}

#: stages from the bottom up; each may import the contract, its own folder and the stages below it
STAGES = ["dsl", "compiler", "programs", "drivers", "runtime"]
#: ext/ holds the compiler's Cython twin: it belongs to the compiler's stage
SAME_STAGE = {"ext": "compiler"}
#: ext/ modules that are the twin of a lower stage's module belong to that stage (the parser's LALR driver, the
#: wire link's frame kernels)
EXT_STAGE = {"_lalr": "dsl", "_runlink": "drivers", "_rules": "compiler"}
#: the runtime streams what drivers take: drivers and the runtime depend on the contract, never the compiler
SKIPS = {"drivers": {"compiler"}, "runtime": {"compiler"}}

#: known exceptions, each with its reason; the list may only shrink
ALLOWED = {
    ("runtime/testing.py", "stimscript.compiler.schedule"):
        "test and benchmark helper: builds Schedules for the suite, not part of the streaming path",
}


def layer(module: str) -> str:
    """``stimscript.compiler.checker`` → "compiler"; ``stimscript.errors`` → "contract"; else "face"."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in STAGES:
        return parts[1]
    if len(parts) >= 3 and parts[1] == "ext" and parts[2] in EXT_STAGE:
        return EXT_STAGE[parts[2]]
    if len(parts) >= 2 and parts[1] in SAME_STAGE:
        return SAME_STAGE[parts[1]]
    if len(parts) >= 2 and parts[1] in CONTRACT:
        return "contract"
    return "face"


def allowed_layers(source: str) -> set[str]:
    if source == "contract":
        return {"contract"}
    if source == "face":
        return {"contract", "face", *STAGES}
    below = STAGES[: STAGES.index(source) + 1]
    return {"contract", *below} - SKIPS.get(source, set())


def module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] != "stimscript":
        parts.insert(0, "stimscript")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files() -> list[Path]:
    files = sorted((ROOT / "stimscript").rglob("*.py"))
    for folder in [*STAGES, *SAME_STAGE]:
        files += sorted((ROOT / folder).rglob("*.py")) + sorted((ROOT / folder).rglob("*.pyi"))
    return [f for f in files if "__pycache__" not in f.parts]


def _known_module(name: str) -> bool:
    """Whether ``name`` is a module or package of the tree."""
    parts = name.split(".")[1:]
    if not parts:
        return True
    path = (ROOT / "stimscript" if parts[0] not in [*STAGES, *SAME_STAGE] else ROOT).joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every project import in ``path``: ``from x import y`` counts as x.y when y is a
    module (``from .. import pulses``), else as x."""
    module = module_of(path)
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if _known_module(sub) else target))
    return [(line, name) for line, name in found if name == "stimscript" or name.startswith("stimscript.")]


def violations() -> list[str]:
    out = []
    for path in package_files():
        source = layer(module_of(path))
        rel = path.relative_to(ROOT).as_posix()
        for line, target in sorted(set(imports_of(path))):
            if layer(target) in allowed_layers(source) or (rel, target) in ALLOWED:
                continue
            out.append(f"{rel}:{line}: {source} imports {target} ({layer(target)})")
    return out


def test_imports_go_only_downward():
    found = violations()
    assert not found, "imports that break docs/architecture.md's dependency rules:\n" + "\n".join(found)


def test_allowed_exceptions_are_still_needed():
    used = {(path.relative_to(ROOT).as_posix(), target) for path in package_files() for _, target in imports_of(path)}
    stale = [f"{rel} -> {target}" for rel, target in ALLOWED if (rel, target) not in used]
    assert not stale, "remove these entries from ALLOWED, the imports are gone: " + ", ".join(stale)


#: the AST is the parser's output and the compiler's input: nothing else reads it (the sheet, plots and info
#: use the CheckedProtocol's typed read API)
AST_READERS = {"dsl", "compiler"}


def test_only_the_compiler_reads_the_ast():
    found = []
    for path in package_files():
        source = layer(module_of(path))
        folder = path.relative_to(ROOT).parts[0]
        for line, target in sorted(set(imports_of(path))):
            if target in ("stimscript.dsl.ast", "stimscript.dsl.transformer") and folder not in AST_READERS:
                found.append(f"{path.relative_to(ROOT).as_posix()}:{line}: {source} imports {target}")
    assert not found, "only dsl/ and compiler/ may read the AST:\n" + "\n".join(found)


def test_contract_modules_exist_and_are_leaves():
    for name in sorted(CONTRACT):
        path = ROOT / "stimscript" / f"{name}.py"
        assert path.exists(), f"contract module stimscript/{name}.py is missing"
        for line, target in imports_of(path):
            assert layer(target) == "contract", f"stimscript/{name}.py:{line} imports {target}"


@pytest.mark.parametrize(("source", "target", "ok"), [
    ("stimscript.compiler.schedule", "stimscript.plotting", False),
    ("stimscript.compiler.protocol", "stimscript.drivers.registry", False),
    ("stimscript.drivers.wire", "stimscript.compiler.ir", False),
    ("stimscript.drivers.emulator", "stimscript.runtime.clock", False),
    ("stimscript.runtime.dispatcher", "stimscript.pulses", True),
    ("stimscript.programs.periodic", "stimscript.compiler.expander", True),
    ("stimscript.errors", "stimscript.spans", True),
    ("stimscript.units", "stimscript.compiler.ir", False),
    ("stimscript.dsl.parser", "stimscript.ext._lalr", True),
    ("stimscript.dsl.parser", "stimscript.ext._expand", False),
    ("stimscript.ext._lalr", "stimscript.compiler.ir", False),
    ("stimscript.commands.run", "stimscript.runtime", True),
])
def test_the_rules_themselves(source, target, ok):
    """The rule table refuses the upward imports this structure removed, and allows the downward ones."""
    assert (layer(target) in allowed_layers(layer(source))) is ok
