"""The fast parser (dsl/lalr.py over the exported tables) gives exactly the AST that Lark gives.

The oracle is Lark itself (``parser._parse_with_lark``, the reference path with its error recovery): for
every example and corpus file, and for random edits of them, the fast path either returns the same AST —
compared field by field *including* spans and the Python types of every value — or hands the text to
Lark (``Fallback``). It never accepts a text that Lark rejects.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stimscript.dsl import ast
from stimscript.dsl import parser as parser_mod
from stimscript.dsl import tables
from stimscript.dsl.lalr import Fallback, TableParser, read_fast_tables
from stimscript.dsl.transformer import AstBuilder
from stimscript.errors import ProtocolSyntaxError
from stimscript.spans import Source, Span

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = parser_mod.GRAMMAR.read_text(encoding="utf-8")
FILES = sorted(ROOT.glob("examples/*.stim")) + sorted((ROOT / "tests" / "corpus").rglob("*.stim"))
VALID = [p for p in FILES if "syntax" not in p.parts]


def _same(a, b, path="protocol"):
    """Deep equality including spans (which AST equality leaves out) and exact types."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Span):
        assert (a.source.name, a.line, a.column, a.end_line, a.end_column, a.start_pos, a.end_pos) == \
            (b.source.name, b.line, b.column, b.end_line, b.end_column, b.start_pos, b.end_pos), path
    elif isinstance(a, ast.Node):
        for name in ast.fields(a):
            _same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _normal(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _both(text: str, name: str = "t.stim"):
    """(Lark's AST or its ProtocolSyntaxError, the fast path's AST or None when it fell back)."""
    source = Source(name, text)
    try:
        ref = parser_mod._parse_with_lark(text, source)
    except ProtocolSyntaxError as exc:
        ref = exc
    try:
        fast = parser_mod.get_fast_parser().parse(text, AstBuilder(source), parser_mod.MAX_DEPTH)
    except Fallback:
        fast = None
    return ref, fast


def _agree(text: str, name: str = "t.stim"):
    ref, fast = _both(text, name)
    if fast is None:
        return ref, fast
    assert not isinstance(ref, ProtocolSyntaxError), f"the fast path accepted what Lark rejects: {ref}"
    _same(ref, fast)
    return ref, fast


def test_the_fast_path_is_available():
    assert isinstance(parser_mod.get_fast_parser(), TableParser)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_and_corpus_file_parses_alike(path):
    ref, fast = _agree(_normal(path.read_bytes().decode("utf-8", errors="replace")), str(path))
    if "syntax" in path.parts:
        assert fast is None  # errors are always Lark's to report


def test_nearly_every_valid_file_takes_the_fast_path():
    """Fallback is for errors and rare shapes (a statement right after `}` on the same line)."""
    fell_back = [p.name for p in VALID if _both(_normal(p.read_text(encoding="utf-8")), p.name)[1] is None
                 and not isinstance(_both(_normal(p.read_text(encoding="utf-8")), p.name)[0], ProtocolSyntaxError)]
    assert len(fell_back) <= max(2, len(VALID) // 20), fell_back


@pytest.mark.parametrize("text, code", [
    ("stimscript 1\nparam a = " + "-" * 150 + "1 mA\n", "E107"),
    ("stimscript 1\nparam a = " + "-" * (parser_mod.MAX_DEPTH - 5) + "1 mA\n", None),
    ("session {\n" + "repeat 2 {\n" * 7 + "q: c\n" + "}\n" * 8, "E114"),
])
def test_deep_nesting_is_reported_by_the_lark_path(text, code):
    """Nesting beyond the limit is never built by the fast path; Lark's path reports it as before."""
    ref, fast = _both(text)
    if code is None:
        _same(ref, fast)
        return
    assert isinstance(ref, ProtocolSyntaxError) and ref.diagnostics[0].code == code
    assert fast is None
    with pytest.raises(ProtocolSyntaxError) as info:
        parser_mod.parse(text)
    assert info.value.diagnostics[0].code == code


def test_a_statement_after_a_closing_brace_still_parses():
    path = ROOT / "tests" / "corpus" / "valid" / "19_inline_blocks.stim"
    text = path.read_text(encoding="utf-8")
    ref, fast = _both(text)
    assert not isinstance(ref, ProtocolSyntaxError)
    _same(parser_mod.parse(text, "t.stim"), ref)


_EDITS = ["", " ", "\n", "}", "{", "1", "x", "..", "->", '"', "#", ";", "%", "mA", "week", ",", "(", ")"]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(VALID), st.integers(0, 2**31), st.sampled_from(_EDITS), st.integers(1, 3))
def test_random_edits_parse_alike_or_fall_back(path, seed, insert, width):
    """Delete ``width`` characters somewhere and insert ``insert``: both paths still agree."""
    text = _normal(path.read_text(encoding="utf-8"))
    i = random.Random(seed).randrange(len(text))
    _agree(text[:i] + insert + text[i + width:])


def test_exported_tables_follow_the_grammar(tmp_path):
    """A tables file is used only for the grammar text it was made from."""
    parser = tables.build(GRAMMAR)
    path = tmp_path / "grammar.tables"
    tables.write_fast_tables(tables.export_tables(parser), GRAMMAR, path)
    assert read_fast_tables(path, GRAMMAR) is not None
    assert read_fast_tables(path, GRAMMAR.replace('"pause"', '"wait"')) is None
    path.write_bytes(b"garbage")
    assert read_fast_tables(path, GRAMMAR) is None
    assert read_fast_tables(tmp_path / "missing.tables", GRAMMAR) is None


def test_build_writes_both_tables(tmp_path):
    tables.build_shipped(parser_mod.GRAMMAR, tmp_path / "grammar.lalr")
    exported = read_fast_tables(tmp_path / "grammar.tables", GRAMMAR)
    assert exported is not None
    text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
    _same(TableParser(exported).parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH),
          parser_mod._parse_with_lark(text, Source("t", text)))


def test_stale_shipped_tables_are_exported_into_the_user_cache(tmp_path, monkeypatch):
    """After a grammar edit in a checkout the shipped export is stale: the parser exports the tables of the
    current grammar into the user cache once and reads them from there next time."""
    monkeypatch.setenv("STIMSCRIPT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(parser_mod, "read_fast_tables",
                        lambda path, grammar: None if path.name == "grammar.tables" else read_fast_tables(path, grammar))
    parser_mod.get_fast_parser.cache_clear()
    try:
        assert isinstance(parser_mod.get_fast_parser(), TableParser)
        cached = tables.fast_cache_path(GRAMMAR)
        assert cached.parent == tmp_path and read_fast_tables(cached, GRAMMAR) is not None
    finally:
        parser_mod.get_fast_parser.cache_clear()


def test_installed_package_ships_current_exported_tables():
    assert tables.SHIPPED_FAST.is_file(), "setup.py did not export the tables: pip install -e . writes them"
    if read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) is None:
        pytest.skip("grammar.lark changed since the last `pip install -e .`: the shipped export is stale and "
                    "ignored, the parser exports fresh tables into the user cache meanwhile")
