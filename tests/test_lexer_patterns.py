"""The fast parser's lexers are rebuilt from the compiled form stored with the exported tables (dsl/tables.py
``compiled_lexers``) instead of compiling their regular expressions on every start: each rebuilt pattern
must be the pattern ``re.compile`` makes, matching the same text the same way."""
from __future__ import annotations

import marshal
import re
from pathlib import Path

import pytest

from stimscript.dsl import parser as parser_mod
from stimscript.dsl import tables
from stimscript.dsl.lalr import compile_pattern, compiled_forms, read_fast_tables

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = parser_mod.GRAMMAR.read_text(encoding="utf-8")
TEXTS = [p.read_text(encoding="utf-8", errors="replace")
         for p in sorted(ROOT.glob("examples/*.stim")) + sorted((ROOT / "tests" / "corpus").rglob("*.stim"))]


@pytest.fixture(scope="module")
def exported():
    data = read_fast_tables(tables.SHIPPED_FAST, GRAMMAR)
    if data is None:
        pytest.skip("the shipped exported tables are stale (grammar edited since `pip install -e .`)")
    return data


def test_the_shipped_tables_carry_every_lexer_compiled(exported):
    import _sre

    sre = marshal.loads(exported["sre"])
    assert sre["magic"] == _sre.MAGIC
    assert [len(c) for c in sre["lexers"]] == [len(p) for p, _ in exported["lexers"]]
    assert compiled_forms(exported) == sre["lexers"]


def test_the_compiled_lexers_are_one_blob_the_twin_never_unmarshals(exported):
    """Reading the tables leaves the pure-Python driver's compiled lexers a ``bytes`` (copied, not built into
    objects): the compiled twin never needs them."""
    assert exported["sre"].__class__ is bytes
    assert marshal.loads(exported["sre"]) == tables.compiled_lexers(exported["lexers"])


def test_compiled_forms_of_another_engine_or_a_broken_blob_are_none(exported):
    sre = marshal.loads(exported["sre"])
    assert compiled_forms({"sre": marshal.dumps({**sre, "magic": sre["magic"] + 1})}) is None
    assert compiled_forms({"sre": exported["sre"][:-5]}) is None
    assert compiled_forms({}) is None


def test_rebuilt_patterns_are_what_re_compiles(exported):
    chunks = [t[i:i + 40] for t in TEXTS for i in range(0, min(len(t), 3000), 7)] + ["", "µs", "\n\n# x\n", "é"]
    for (patterns, _), compiled in zip(exported["lexers"], compiled_forms(exported)):
        for pattern, form in zip(patterns, compiled):
            ours, theirs = compile_pattern(pattern, form), re.compile(pattern)
            assert (ours.pattern, ours.flags, ours.groups, ours.groupindex) == \
                (theirs.pattern, theirs.flags, theirs.groups, theirs.groupindex)
            for text in chunks:
                for pos in range(0, len(text), 3):
                    a, b = ours.match(text, pos), theirs.match(text, pos)
                    assert (a and (a.span(), a.lastgroup)) == (b and (b.span(), b.lastgroup)), (pattern, text, pos)


def test_a_compiled_form_the_engine_refuses_falls_back_to_re_compile():
    pattern = r"(?P<NAME>[A-Za-z_]+)|(?P<NUMBER>[0-9]+)"
    broken = (0, [1, 2, 3], 1, {"NAME": 1}, (None, "NAME"))
    rebuilt = compile_pattern(pattern, broken)
    assert rebuilt.match("abc1").lastgroup == "NAME" and rebuilt.match("12").lastgroup == "NUMBER"
    assert compile_pattern(pattern, None).pattern == pattern
