"""ruff and mypy on the package, as part of the suite (rules and strictness: pyproject.toml, docs/architecture.md).

The repository keeps one folder per stage (``dsl/``, ``compiler/``, ...) and setup.py installs them as
sub-packages of ``stimscript``. mypy knows nothing of ``package_dir`` and cannot follow the editable install's
import hook, so the test lays out the installed shape as a tree of symbolic links under ``.mypy_cache/tree``
(gitignored, next to mypy's own incremental cache) and checks ``-p stimscript`` there; findings are reported
with their repository paths.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def subpackages() -> list[str]:
    """The folders setup.py maps onto ``stimscript.<name>`` (its SUBPACKAGES list, read without running it)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SUBPACKAGES" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no SUBPACKAGES list")


PACKAGE_FOLDERS = ["stimscript", *subpackages()]


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def test_ruff_finds_nothing():
    _require("ruff")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *PACKAGE_FOLDERS],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}{result.stderr}"


def _link_tree(base: Path) -> Path:
    """``base/stimscript`` shaped like the installed package: links to stimscript/* and the stage folders."""
    package = base / "stimscript"
    package.mkdir(parents=True, exist_ok=True)
    wanted = {entry.name: entry for entry in (ROOT / "stimscript").iterdir() if entry.name != "__pycache__"}
    wanted.update({name: ROOT / name for name in subpackages()})
    for link in package.iterdir():
        if link.name not in wanted or not link.is_symlink() or Path(os.readlink(link)) != wanted[link.name]:
            link.unlink()
    for name, target in wanted.items():
        link = package / name
        if not link.is_symlink():
            try:
                link.symlink_to(target)
            except FileExistsError:  # another run of the suite made it meanwhile
                pass
    return base


def _repository_path(line: str) -> str:
    """``stimscript/compiler/x.py:3: error`` → ``compiler/x.py:3: error`` (the file as it is in the repository)."""
    for name in subpackages():
        prefix = f"stimscript/{name}/"
        if line.startswith(prefix):
            return line[len("stimscript/"):]
    return line


def test_mypy_finds_nothing():
    _require("mypy")
    cache = ROOT / ".mypy_cache"
    tree = _link_tree(cache / "tree")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache),
         "--no-error-summary", "--hide-error-context", "-p", "stimscript"],
        cwd=tree, capture_output=True, text=True,
    )
    report = "\n".join(_repository_path(line) for line in (result.stdout + result.stderr).splitlines())
    assert result.returncode == 0, f"mypy found errors:\n{report}"
