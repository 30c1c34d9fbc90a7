"""Start-up behaviour a user relies on: cached parser tables that follow the grammar, and commands that load
only what they use (numpy, rich, matplotlib stay out of `check`; `--help` imports no command).

No timing here (benchmarks/bench_startup.py measures); these tests assert which tables are read and which
modules a real process imports.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from lark.exceptions import UnexpectedInput

from stimscript.cli import COMMANDS, SUMMARIES, LazyGroup, cli
from stimscript.dsl import parser as parser_mod
from stimscript.dsl import tables

ROOT = Path(__file__).resolve().parents[1]
TKA = str(ROOT / "examples" / "tka_quadriceps.stim")
GRAMMAR = parser_mod.GRAMMAR.read_text(encoding="utf-8")


def _no_build(monkeypatch):
    def refuse(grammar):
        raise AssertionError("the parser was rebuilt although current tables were available")

    monkeypatch.setattr(tables, "build", refuse)


def test_tables_written_at_build_are_read_without_rebuilding(tmp_path, monkeypatch):
    shipped = tables.build_shipped(parser_mod.GRAMMAR, tmp_path / "grammar.lalr")
    assert shipped.read_bytes().split(b"\n", 1)[0] == tables.grammar_key(GRAMMAR).encode()
    _no_build(monkeypatch)
    p = tables.load_parser(GRAMMAR, shipped=shipped, cache_dir=tmp_path / "cache")
    assert p.parse(Path(TKA).read_text(encoding="utf-8")) is not None
    assert not (tmp_path / "cache").exists()  # nothing had to be cached


def test_loaded_tables_parse_like_a_freshly_built_parser(tmp_path):
    shipped = tables.build_shipped(parser_mod.GRAMMAR, tmp_path / "grammar.lalr")
    loaded = tables.read_tables(shipped, tables.grammar_key(GRAMMAR))
    fresh = tables.build(GRAMMAR)
    for path in sorted((ROOT / "examples").glob("*.stim")):
        text = path.read_text(encoding="utf-8")
        assert loaded.parse(text) == fresh.parse(text), path.name


def test_a_grammar_change_never_reads_stale_tables(tmp_path):
    """The shipped tables belong to the old grammar: the new grammar is built, used and cached by its key."""
    shipped = tables.build_shipped(parser_mod.GRAMMAR, tmp_path / "grammar.lalr")
    # a grammar edit: the keyword `pause` becomes `wait`
    assert GRAMMAR.count('"pause"') == 1
    changed = GRAMMAR.replace('"pause"', '"wait"')
    text = Path(TKA).read_text(encoding="utf-8").replace("session {", "session {\n    wait 1 min", 1)
    assert tables.grammar_key(changed) != tables.grammar_key(GRAMMAR)
    p = tables.load_parser(changed, shipped=shipped, cache_dir=tmp_path / "cache")
    assert p.parse(text) is not None
    cached = tables.user_cache_path(tables.grammar_key(changed), tmp_path / "cache")
    assert cached.is_file()
    # the next start reads the cached tables of the new grammar; neither file serves the other grammar
    assert tables.read_tables(cached, tables.grammar_key(changed)).parse(text) is not None
    assert tables.read_tables(cached, tables.grammar_key(GRAMMAR)) is None
    assert tables.read_tables(shipped, tables.grammar_key(changed)) is None
    with pytest.raises(UnexpectedInput):
        tables.read_tables(shipped, tables.grammar_key(GRAMMAR)).parse(text)


def test_changed_options_or_versions_change_the_key(monkeypatch):
    key = tables.grammar_key(GRAMMAR)
    monkeypatch.setattr(tables, "LARK_VERSION", "0.0.1")
    assert tables.grammar_key(GRAMMAR) != key
    monkeypatch.undo()
    monkeypatch.setitem(tables.OPTIONS, "lexer", "basic")
    assert tables.grammar_key(GRAMMAR) != key


@pytest.mark.parametrize("content", [b"", b"not a key\n", b"%s\n" % ("0" * 64).encode(), None])
def test_truncated_or_foreign_tables_are_a_miss_not_an_error(tmp_path, content):
    path = tmp_path / "grammar.lalr"
    key = tables.grammar_key(GRAMMAR)
    if content is None:  # the right key, then garbage where the pickled parser should be
        content = key.encode() + b"\n" + b"\x80\x05garbage"
    path.write_bytes(content)
    assert tables.read_tables(path, key) is None
    p = tables.load_parser(GRAMMAR, shipped=path, cache_dir=tmp_path / "cache")
    assert p.parse(Path(TKA).read_text(encoding="utf-8")) is not None


def test_an_unwritable_cache_folder_still_parses(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    p = tables.load_parser(GRAMMAR, shipped=None, cache_dir=blocker / "sub")
    assert p.parse(Path(TKA).read_text(encoding="utf-8")) is not None


def test_installed_package_ships_current_tables():
    """``pip install`` (editable or not) writes grammar.lalr next to grammar.lark (setup.py build_py)."""
    assert tables.SHIPPED.parent == parser_mod.GRAMMAR.parent
    assert tables.SHIPPED.is_file(), "setup.py did not write the parser tables: pip install -e . writes them"
    head = tables.SHIPPED.read_bytes().split(b"\n", 1)[0]
    if head != tables.grammar_key(GRAMMAR).encode():
        pytest.skip("grammar.lark (or lark) changed since the last `pip install -e .`: the shipped tables are "
                    "stale and ignored, the parser caches fresh ones in the user cache folder meanwhile")
    assert tables.read_tables(tables.SHIPPED, tables.grammar_key(GRAMMAR)) is not None


PROBE = r"""
import json, sys
from stimscript.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print(json.dumps({"rc": rc, "modules": sorted(sys.modules), "package": sys.modules["stimscript"].__file__}),
      file=sys.stderr)
"""


def _imported(*args: str, tmp_path) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, "STIMSCRIPT_CACHE_DIR": str(tmp_path)})
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["rc"], set(report["modules"])


def _loaded(modules: set[str], package: str) -> bool:
    return package in modules or any(m.startswith(package + ".") for m in modules)


def test_check_loads_neither_numpy_nor_rich_nor_matplotlib(tmp_path):
    rc, modules = _imported("check", TKA, tmp_path=tmp_path)
    assert rc == 0
    for heavy in ("numpy", "rich", "matplotlib", "sqlite3"):
        assert not _loaded(modules, heavy), f"`stimscript check` imported {heavy}"
    assert "stimscript.commands.check" in modules
    others = {m for m in modules if m.startswith("stimscript.commands.")} - {
        "stimscript.commands.check", "stimscript.commands._common", "stimscript.commands.options"}
    assert not others, f"check imported other commands: {sorted(others)}"


def test_check_of_a_good_file_does_not_import_lark(tmp_path):
    """Well-formed text is parsed from the exported tables (dsl/lalr.py); lark is for errors."""
    from stimscript.dsl.lalr import read_fast_tables

    if read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) is None:
        pytest.skip("the shipped exported tables are stale (grammar edited since `pip install -e .`)")
    rc, modules = _imported("check", TKA, tmp_path=tmp_path)
    assert rc == 0
    assert not _loaded(modules, "lark"), "`stimscript check` of a good file imported lark"
    rc, modules = _imported("check", str(ROOT / "tests" / "corpus" / "syntax" / os.listdir(
        ROOT / "tests" / "corpus" / "syntax")[0]), tmp_path=tmp_path)
    assert rc == 1 and _loaded(modules, "lark")   # an error: Lark reports it


#: standard-library modules that ``check`` of a good file does without: each costs start-up (dataclasses brings
#: inspect, ast, dis and tokenize); the value classes are built by stimscript/valueclass.py, type names are
#: imported only for type checkers, dates and did-you-mean only where they are used, the parser cuts a BOM
#: off itself (no utf-8-sig codec module; tests/test_atlas.py checks that the atlas needs no json)
NOT_FOR_A_GOOD_CHECK = ("dataclasses", "inspect", "typing", "difflib", "datetime", "click", "encodings.utf_8_sig")


def test_check_of_a_good_file_leaves_out_dataclasses_typing_and_friends(tmp_path):
    rc, modules = _imported("check", TKA, tmp_path=tmp_path)
    assert rc == 0
    loaded = [m for m in NOT_FOR_A_GOOD_CHECK if _loaded(modules, m)]
    assert not loaded, f"`stimscript check` of a good file imported {loaded}"


def test_check_with_the_compiled_parser_leaves_out_bisect(tmp_path):
    """Only the pure-Python parser (dsl/lalr_python.py) uses bisect; with the compiled twin a check never loads
    it, nor that module itself."""
    if not parser_mod.USING_EXTENSION:
        pytest.skip("the compiled parser is not in use (STIMSCRIPT_NO_EXTENSIONS or not built)")
    rc, modules = _imported("check", TKA, tmp_path=tmp_path)
    assert rc == 0
    assert not _loaded(modules, "bisect") and not _loaded(modules, "_bisect")
    assert "stimscript.dsl.lalr_python" not in modules and "stimscript.dsl.lalr" in modules


def test_without_the_twin_the_reference_parser_is_loaded_and_used(tmp_path, monkeypatch):
    """With the extensions switched off, dsl/parser.py picks the pure-Python driver, which
    ``stimscript.dsl.lalr.TableParser`` still names."""
    monkeypatch.setenv("STIMSCRIPT_NO_EXTENSIONS", "1")
    rc, modules = _imported("check", TKA, tmp_path=tmp_path)
    assert rc == 0 and "stimscript.dsl.lalr_python" in modules
    from stimscript.dsl import lalr, lalr_python

    assert lalr.TableParser is lalr_python.TableParser and lalr.compile_pattern is lalr_python.compile_pattern
    assert (parser_mod.FastParser is lalr_python.TableParser) is (not parser_mod.USING_EXTENSION)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        lalr.Nothing  # noqa: B018 - the lookup is the test


def test_check_as_installed_from_a_wheel_leaves_out_pathlib(tmp_path):
    """Laid out as a wheel installs it (no editable finder, which imports pathlib itself), ``check`` of a good
    file imports no pathlib either: the parser and the atlas find their files with os.path."""
    import shutil
    import site

    staged = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "build")
    shutil.copytree(ROOT / "stimscript", staged / "stimscript", ignore=ignore)
    for name in ("dsl", "compiler", "programs", "runtime", "drivers", "ext"):
        shutil.copytree(ROOT / name, staged / "stimscript" / name, ignore=ignore)
    env = {**os.environ, "STIMSCRIPT_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(staged), *site.getsitepackages()])}
    proc = subprocess.run([sys.executable, "-S", "-c", PROBE, "check", TKA], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, env=env)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    modules = set(report["modules"])
    assert report["rc"] == 0
    assert report["package"] == str(staged / "stimscript" / "__init__.py")   # the copy, not the checkout
    loaded = [m for m in ("pathlib", *NOT_FOR_A_GOOD_CHECK) if _loaded(modules, m)]
    assert not loaded, f"`stimscript check` of a good file (wheel layout) imported {loaded}"


def test_check_with_errors_still_suggests_names(tmp_path):
    """The lazily imported helpers still work: a misspelt site gets its did-you-mean from difflib."""
    bad = tmp_path / "bad.stim"
    bad.write_text(Path(TKA).read_text(encoding="utf-8").replace("site vastus_medialis", "site vastus_medialx"),
                   encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "stimscript.cli", "check", str(bad)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, "STIMSCRIPT_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert "vastus_medialis" in proc.stderr and "Traceback" not in proc.stderr


def test_help_imports_no_command(tmp_path):
    rc, modules = _imported("--help", tmp_path=tmp_path)
    assert rc == 0
    assert not {m for m in modules if m.startswith("stimscript.commands.")}
    assert not _loaded(modules, "lark") and not _loaded(modules, "numpy")
    assert not _loaded(modules, "stimscript.compiler") and not _loaded(modules, "stimscript.dsl")


def test_help_lists_every_command_with_its_own_summary():
    """SUMMARIES (printed by --help without imports) say what each command's own help says."""
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        cmd = LazyGroup._load(name)
        first_paragraph = " ".join((cmd.help or "").split("\n\n")[0].split())
        assert SUMMARIES[name] == first_paragraph, name
    out = CliRunner().invoke(cli, ["--help"], terminal_width=200).output
    for name in COMMANDS:
        assert f"  {name} " in out
        assert SUMMARIES[name].rstrip(".")[:40] in out


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["chek", "x.stim"])
    assert result.exit_code == 2
    assert "No such command" in result.output
