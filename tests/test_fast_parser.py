"""The fast parser (dsl/lalr.py over the exported tables) gives exactly the AST that Lark gives.

The oracle is Lark itself (``parser._parse_with_lark``, the reference path with its error recovery): for
every example and corpus file, and for random edits of them, the fast path either returns the same AST —
compared field by field *including* spans and the Python types of every value — or hands the text to
Lark (``Fallback``). It never accepts a text that Lark rejects.

Every text goes through both twins of the fast path's driver: the pure-Python reference (dsl/lalr.py) and,
when it is built, the compiled one (ext/_lalr.pyx); they must return the same AST (spans included) or both
fall back (tests/test_parse_twin.py compares them more closely still).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stimscript.dsl import ast
from stimscript.dsl import parser as parser_mod
from stimscript.dsl import tables
from stimscript.dsl.lalr import FORMAT, Fallback, TableParser, read_fast_tables
from stimscript.dsl.transformer import AstBuilder
from stimscript.errors import ProtocolSyntaxError
from stimscript.spans import Source, Span

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = parser_mod.GRAMMAR.read_text(encoding="utf-8")
FILES = sorted(ROOT.glob("examples/*.stim")) + sorted((ROOT / "tests" / "corpus").rglob("*.stim"))
VALID = [p for p in FILES if "syntax" not in p.parts]
#: the exported tables (those shipped, or exported now when the grammar changed since the install)
EXPORTED = read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) or tables.export_tables(tables.build(GRAMMAR))
#: the pure-Python driver, the reference of the compiled one
REFERENCE = TableParser(EXPORTED)
#: every driver of the fast path: the reference and, when built, its compiled twin (parser.FastParser)
TWINS = [REFERENCE] + ([parser_mod.FastParser(EXPORTED)] if parser_mod.FastParser is not TableParser else [])


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
    results = []
    for twin in TWINS:
        try:
            results.append(twin.parse(text, AstBuilder(source), parser_mod.MAX_DEPTH))
        except Fallback:
            results.append(None)
    fast = results[0]
    for other in results[1:]:   # the compiled twin: what the reference gives, or a fallback where it falls back
        assert (other is None) == (fast is None), "the twins disagree on falling back"
        if fast is not None:
            _same(fast, other)
    return ref, fast


def _agree(text: str, name: str = "t.stim"):
    ref, fast = _both(text, name)
    if fast is None:
        return ref, fast
    assert not isinstance(ref, ProtocolSyntaxError), f"the fast path accepted what Lark rejects: {ref}"
    _same(ref, fast)
    return ref, fast


def test_the_fast_path_is_available():
    """The compiled twin when built (and required where CI requires it), the reference when it is turned off."""
    import os

    fast = parser_mod.get_fast_parser()
    assert isinstance(fast, parser_mod.FastParser)
    if os.environ.get("STIMSCRIPT_NO_EXTENSIONS", "") not in ("", "0"):
        assert type(fast) is TableParser and not parser_mod.USING_EXTENSION
    elif os.environ.get("STIMSCRIPT_REQUIRE_EXTENSIONS", "") not in ("", "0"):
        assert type(fast) is not TableParser and parser_mod.USING_EXTENSION


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
    for twin in {TableParser, parser_mod.FastParser}:
        _same(twin(exported).parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH),
              parser_mod._parse_with_lark(text, Source("t", text)))


def test_stale_shipped_tables_are_exported_into_the_user_cache(tmp_path, monkeypatch):
    """After a grammar edit in a checkout the shipped export is stale: the parser exports the tables of the
    current grammar into the user cache once and reads them from there next time."""
    monkeypatch.setenv("STIMSCRIPT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(parser_mod, "read_fast_tables",
                        lambda path, grammar, driver=None: None if os.path.basename(path) == "grammar.tables"
                        else read_fast_tables(path, grammar, driver))
    parser_mod.get_fast_parser.cache_clear()
    try:
        assert isinstance(parser_mod.get_fast_parser(), parser_mod.FastParser)
        cached = tables.fast_cache_path(GRAMMAR)
        assert cached.parent == tmp_path and read_fast_tables(cached, GRAMMAR) is not None
    finally:
        parser_mod.get_fast_parser.cache_clear()


def test_installed_package_ships_current_exported_tables():
    assert tables.SHIPPED_FAST.is_file(), "setup.py did not export the tables: pip install -e . writes them"
    if read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) is None:
        pytest.skip("grammar.lark changed since the last `pip install -e .`: the shipped export is stale and "
                    "ignored, the parser exports fresh tables into the user cache meanwhile")


# ---- the fast path's shortcuts, each against an oracle that does not use it ----------------------------

def test_exported_tables_of_another_layout_are_ignored(tmp_path):
    """A tables file written by an older stimscript (another layout: the previous one was one marshalled dict)
    or another Python is a cache miss, not a crash, for every driver."""
    import marshal
    import sys

    path = tmp_path / "grammar.tables"
    tables.write_fast_tables(EXPORTED, GRAMMAR, path)
    data = path.read_bytes()
    head = data[:tables.HEAD_SIZE].split()
    assert head[0].decode() == FORMAT == tables.FAST_FORMAT and head[1] == b"%d.%d" % sys.version_info[:2]
    older = {"format": "stimscript-lalr-export-5", "python": "%d.%d" % sys.version_info[:2], "grammar": GRAMMAR,
             "tables": {k: v for k, v in EXPORTED.items() if k != "twin"}}
    for other in (data.replace(FORMAT.encode(), b"stimscript-lalr-export-9", 1),
                  data.replace(b" %d.%d " % sys.version_info[:2], b" 2.7 ", 1), marshal.dumps(older)):
        path.write_bytes(other)
        for driver in (None, "compiled", "reference"):
            assert read_fast_tables(path, GRAMMAR, driver) is None
    assert sys.version_info[:2] != (2, 7)


def test_a_warm_parser_gives_what_a_fresh_one_gives():
    """The parser remembers chains of ``?rule`` reductions across parses: parsing every file with one
    shared parser gives exactly what a new parser gives for each file."""
    for twin in {TableParser, parser_mod.FastParser}:
        shared = twin(EXPORTED)
        for path in VALID * 2:
            text = _normal(path.read_text(encoding="utf-8"))
            try:
                warm = shared.parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH)
            except Fallback:
                warm = None
            try:
                fresh = twin(EXPORTED).parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH)
            except Fallback:
                fresh = None
            _same(warm, fresh, path.name)


def test_new_span_is_the_constructor():
    from stimscript.dsl.transformer import new_span

    source = Source("a.stim", "x = 1\n")
    ours, theirs = new_span(source, 1, 2, 3, 4, 5, 6), Span(source, 1, 2, 3, 4, 5, 6)
    assert type(ours) is Span and vars(ours) == vars(theirs) and list(vars(ours)) == list(vars(theirs))
    assert ours == theirs and hash(ours) == hash(theirs) and repr(ours) == repr(theirs)
    assert ours.file == "a.stim" and str(ours) == "a.stim:1:2"


def _lark_lexes(scanner, ignore_types, text: str, pos: int):
    """Lark's own lexer for one parser state: (terminal, start, end) of the next token, blanks skipped."""
    from lark.utils import TextSlice

    while pos < len(text):
        found = scanner.match(TextSlice(text, 0, len(text)), pos)
        if found is None:
            return None
        value, type_ = found
        if type_ not in ignore_types:
            return type_, pos, pos + len(value)
        pos += len(value)
    return "end", pos, pos


def _fast_lexes(lexer, ignore, text: str, pos: int):
    while pos < len(text):
        m = lexer[0](text, pos)
        if m is None:
            return None
        type_ = m.lastgroup
        start, end = m.span(type_)
        if type_ not in ignore:
            return type_, start, end
        pos = end
    return "end", pos, pos


_LEX_ALPHABET = " \t\f\r\n;#{}()[]%,.:=+-*/\"\\<>_aAzZ019µμéx"
_LEX_WORDS = ["repeat", "for", "week", "us", "mA", "kHz", "cm2", "->", "..", "+=", "1.5", "..3", "limits",
              "session", "left", "   ", "\t ", " # c\n  ", "\"s t\"", "x"]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.sampled_from(_LEX_WORDS), st.text(_LEX_ALPHABET, max_size=3)), max_size=12))
def test_every_state_lexes_as_larks_own_lexer(pieces):
    """Blanks folded into each state's expression (dsl/tables.py ``_ignore_prefix``) and the token read
    where its group starts: the same next token as Lark's lexer for that state, from every position. The
    compiled twin's lexer (its own scanners, ``lex``) too."""
    lark = parser_mod.get_parser()
    fast = REFERENCE
    text = "".join(pieces)
    for state, basic in lark.parser.lexer.lexers.items():
        lexer = fast._by_state[state] or fast._lexer(state)
        for pos in range(len(text) + 1):
            expected = _lark_lexes(basic.scanner, basic.ignore_types, text, pos)
            assert _fast_lexes(lexer, fast.ignore, text, pos) == expected, (state, text, pos)
            for twin in TWINS[1:]:
                assert twin.lex(state, text, pos) == expected, (state, text, pos)


def test_blanks_are_folded_in_nearly_every_state():
    """(Otherwise the shortcut above is silently off and every blank costs a token.)"""
    folded = [patterns[0].startswith("[") for patterns, _ in REFERENCE._lexer_specs]
    assert sum(folded) >= len(folded) - 2


def test_the_engine_code_is_stored_as_bytes():
    """The compiled expressions' code is stored as bytes, which marshal reads far faster than a list of
    ints; rebuilt, it is what ``re.compile`` makes (every lexer: tests/test_lexer_patterns.py)."""
    import re

    from stimscript.dsl.lalr import compile_pattern, compiled_forms

    exported = read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) or tables.export_tables(tables.build(GRAMMAR))
    pattern, form = exported["lexers"][0][0][0], compiled_forms(exported)[0][0]
    assert isinstance(form[1], bytes)
    ours, theirs = compile_pattern(pattern, form), re.compile(pattern)
    assert (ours.pattern, ours.groups, ours.groupindex) == (theirs.pattern, theirs.groups, theirs.groupindex)
    assert ours.match("  12 mA").span() == theirs.match("  12 mA").span()


def test_the_packed_actions_are_larks_parse_table():
    """The action rows are stored packed (one bytes run, read at memory speed); unpacked they are Lark's own
    table: per state, the next state of each shift or goto and the complement of each reduction's rule index,
    and every symbol the twins number (terminals first, in the scanners' order)."""
    from lark.parsers.lalr_analysis import Shift

    from stimscript.dsl.lalr import unpack_actions

    table = parser_mod.get_parser().parser.parser.parser.parse_table   # the parser the tables were exported from
    expected = [{str(sym): arg if action is Shift else (str(arg.origin.name), len(arg.expansion))
                 for sym, (action, arg) in table.states[s].items()} for s in range(len(table.states))]

    def readable(rows):   # a reduction as its rule's (origin, size)
        return [{name: act if act >= 0 else tuple(EXPORTED["rules"][~act][:2]) for name, act in row.items()}
                for row in rows]

    assert isinstance(EXPORTED["actions"], bytes)
    assert EXPORTED["symbols"][:len(EXPORTED["scanners"])] == list(EXPORTED["scanners"])
    assert set(EXPORTED["symbols"]) >= {name for row in expected for name in row} | {"$END"}
    assert len(set(EXPORTED["symbols"])) == len(EXPORTED["symbols"])
    rows = unpack_actions(EXPORTED["actions"], EXPORTED["symbols"], len(EXPORTED["lexer_of_state"]))
    assert readable(rows) == expected
    assert REFERENCE.actions == rows
    with pytest.raises(ValueError):
        unpack_actions(EXPORTED["actions"][:-8], EXPORTED["symbols"], len(EXPORTED["lexer_of_state"]))
    for twin in TWINS[1:]:   # the compiled twin reads them from its comb: the same table, symbol by symbol
        for state, row in enumerate(rows):
            for number, name in enumerate(EXPORTED["symbols"]):
                assert twin.action(state, number) == row.get(name), (state, name)
        with pytest.raises(ValueError):   # and refuses a truncated run (it never reads past the end)
            type(twin)({**EXPORTED, "twin": EXPORTED["twin"][:len(EXPORTED["twin"]) // 2]})


# valid protocols built from the grammar's constructs, spaced and separated in every allowed way
_blank = st.sampled_from([" ", "  ", "\t", " \t ", "\f", " \r"])
_sep = st.sampled_from(["\n", ";", "\n\n", " # note\n", "\n  \n", " ;\n", "\n\t", "\r\n"])


def _join(draw, words):
    return "".join(w + draw(_blank) for w in words).rstrip(" \t\f\r")


@st.composite
def _expr(draw, depth=0):
    kind = draw(st.integers(0, 9 if depth < 3 else 4))
    number = draw(st.sampled_from(["1", "0", "2.5", "10", "250", "0.05", "007"]))
    unit = draw(st.sampled_from(["mA", "us", "µs", "s", "Hz", "kHz", "ms", "cm", "cm2", "%", "uA", "min"]))
    if kind == 0:
        return number
    if kind in (1, 2):
        return _join(draw, [number, unit])
    if kind == 3:
        return draw(st.sampled_from(["intensity", "width", "a_b", "x1"]))
    if kind == 4:
        return _join(draw, [number, "%", draw(st.sampled_from(["intensity", "i2"]))])
    if kind in (5, 6):
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        return _join(draw, [draw(_expr(depth + 1)), op, draw(_expr(depth + 1))])
    if kind == 7:
        return draw(st.sampled_from(["-", "+", "- -"])) + draw(_expr(depth + 1))
    return "(" + draw(st.sampled_from(["", " "])) + draw(_expr(depth + 1)) + draw(st.sampled_from(["", " "])) + ")"


@st.composite
def _body(draw, items, allman=False):
    """``{ item; item }`` with any separators (and, sometimes, the brace on the next line)."""
    parts = draw(st.lists(items, min_size=1, max_size=3))
    inner = "".join(draw(_sep) + p for p in parts)
    return (draw(st.sampled_from(["\n", ""])) if allman else "") + "{" + inner + draw(
        st.sampled_from(["", "\n", ";"])) + draw(st.sampled_from(["\n", " ", ""])) + "}"


@st.composite
def _line(draw):
    channels = draw(st.lists(st.sampled_from(["quad", "ham", "c1"]), min_size=1, max_size=3))
    words = [", ".join(channels), ":", draw(st.sampled_from(["contraction", "easy"]))]
    after = False
    for _ in range(draw(st.integers(0, 2))):
        if not after and draw(st.booleans()):   # (two `after` clauses are an error)
            words += ["after", draw(_expr())]
            after = True
        else:
            words += ["with", draw(st.sampled_from(["frequency", "amplitude"])), draw(_expr())]
            if draw(st.booleans()):
                words += [",", "pulse", "biphasic", draw(_expr())]
    return _join(draw, words)


@st.composite
def _block(draw, depth=0):
    kind = draw(st.integers(0, 2 if depth < 2 else 0))
    if kind == 0 and draw(st.booleans()):
        return _join(draw, ["pause", draw(_expr())])
    keyword = draw(st.sampled_from(["repeat", "for"]))
    if kind == 0 or depth >= 2:
        return _join(draw, [keyword, draw(_expr())]) + draw(_blank) + draw(_body(_line(), allman=True))
    return _join(draw, [keyword, draw(_expr())]) + draw(_blank) + draw(_body(_block(depth + 1), allman=True))


_channel_item = st.one_of(
    st.just("site vastus_medialis right"), st.just('site "lateral thigh"'), st.just("site soleus both"),
    st.just("electrodes prox -> dist"), st.builds(lambda e: "frequency " + e, _expr()),
    st.builds(lambda e: "amplitude " + e, _expr()),
    st.builds(lambda a, b: f"pulse biphasic {a} gap {b}", _expr(), _expr()),
    st.builds(lambda a, b: f"pulse asymmetric {a} ratio {b}", _expr(), _expr()),
    st.builds(lambda a, b: f"pulse burst {a} for {b}", _expr(), _expr()),
    st.builds(lambda a: f"pulse monophasic {a}", _expr()),
    st.builds(lambda a, b: f"pulse doublet {a} spacing {b}", _expr(), _expr()),
    st.builds(lambda a, b: f"pulse shape {{ {a} for {b} }}", _expr(), _expr()))
_cycle_step = st.one_of(*(st.builds(lambda e, w=w: f"{w} {e}", _expr())
                          for w in ("ramp up", "hold", "ramp down", "rest")))
_assignment = st.builds(lambda t, op, e, b: f"{t} {op} {e}{b}", st.sampled_from(["intensity", "contraction.hold", "a.b.c"]),
                        st.sampled_from(["=", "+=", "-="]), _expr(),
                        st.sampled_from(["", " up to 80 mA", " down to 1 s"]))


@st.composite
def _protocol(draw):
    top = st.one_of(
        st.builds(lambda b, p: 'protocol "T"' + b[:-1] + p + "}", _body(st.sampled_from(
            ['reference "R"', 'author "A \\"q\\""'])), st.sampled_from(
            ["", "; plan 2 sessions per day, 6 weeks\n", "\nplan 1 session per week, 1 week "])),
        st.builds(lambda e, r, d: f"param intensity = {e}{r}{d}", _expr(),
                  st.sampled_from(["", " in 10 mA .. 80 mA"]), st.sampled_from(["", ' "max"'])),
        st.builds(lambda a, b: f"electrode prox {a} x {b}", _expr(), _expr()),
        st.builds(lambda a: f"electrode dist {a}", _expr()),
        st.builds(lambda b: "channel quad 1 " + b, _body(_channel_item, allman=True)),
        st.builds(lambda b: "cycle contraction " + b, _body(_cycle_step)),
        st.builds(lambda b: "session " + b, _body(_block(), allman=True)),
        st.builds(lambda w, b: f"progression {{ week {w} {b} }}", st.sampled_from(["1", "2..4", "3.."]),
                  _body(_assignment)),
        st.builds(lambda b: "progression { every week " + b + " }", _body(_assignment)),
        st.builds(lambda b: "limits " + b, _body(st.sampled_from(
            ["max current 100 mA", "min frequency 1 Hz", "max pulse width 500 us", "max charge 30 uC",
             "max session 2 h", "max channels 4", "allow S005", "max phase width 1 ms", "max density 2 mA"]))))
    items = draw(st.lists(top, min_size=1, max_size=5))
    return draw(st.sampled_from(["", "\n", "# head\n", "  ", "stimscript 1\n", "\nstimscript 1;"])) + "".join(
        item + draw(_sep) for item in items) + draw(st.sampled_from(["", "  ", "\n# end"]))


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_protocol())
def test_generated_protocols_parse_alike(text):
    """The oracle is Lark's parse tree through the same AST builder (``_parse_with_lark``): the fast path
    builds the same AST, spans and value types included, and does not fall back on well-formed text."""
    ref, fast = _agree(text)
    assert not isinstance(ref, ProtocolSyntaxError), ref
    assert fast is not None, "the fast path fell back on well-formed text"


@pytest.mark.parametrize("depth", [97, 98, 99, 100, 101, 102])
@pytest.mark.parametrize("shape", ["(", "-", "sum", "-(", "mix"])
def test_expressions_at_the_depth_limit(depth, shape):
    """Nesting right at MAX_DEPTH (100) is decided alike: parsed the same, or left to Lark (which
    reports E107)."""
    if shape == "(":
        expr = "(" * depth + "1 mA" + ")" * depth
    elif shape == "-":
        expr = "-" * depth + "1 mA"
    elif shape == "sum":
        expr = " + ".join(["1 mA"] * depth)
    elif shape == "-(":
        expr = "-(" * depth + "1 mA" + ")" * depth
    else:
        expr = " * ".join(["-(1 mA + 2 mA)"] * (depth // 2))
    text = f"stimscript 1\nparam a = {expr}\n"
    ref, fast = _agree(text)
    result = parser_mod.parse(text) if not isinstance(ref, ProtocolSyntaxError) else None
    if fast is None and result is None:
        with pytest.raises(ProtocolSyntaxError) as info:
            parser_mod.parse(text)
        assert info.value.diagnostics[0].code == ref.diagnostics[0].code


@pytest.mark.parametrize("text", ["stimscript 1\nparam a = 1 mA\n", "param a = = 1\n", "\x00"])
@pytest.mark.parametrize("enabled", [True, False])
def test_parse_leaves_the_garbage_collector_as_it_found_it(text, enabled):
    """The collector is paused while the fast path builds the tree, and only then: on or off before a parse
    (well-formed or not), the same after it."""
    import gc

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        try:
            parser_mod.parse(text)
        except ProtocolSyntaxError:
            pass
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()


# ---- the layout of the exported tables: the compiled twin's packed run, the parts each driver reads --------

def _run_words(run: bytes) -> list[int]:
    """The 32-bit words of a packed run (dsl/tables.py ``pack_twin``: the second word is their number)."""
    from array import array

    words = array("I")
    words.frombytes(run[:8])
    count = words[1]
    words = array("I")
    words.frombytes(run[:4 * count])
    return words.tolist()


def _with_words(run: bytes, words: list[int], checksum: bool = True) -> bytes:
    """``run`` with its words replaced (and its checksum made to match them, unless told otherwise)."""
    from array import array

    if checksum:
        words = words[:2] + [tables.checksum(words[3:])] + words[3:]
    return array("I", words).tobytes() + run[4 * len(words):]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.dictionaries(st.integers(0, 40), st.integers(-300, 600), max_size=12), max_size=40))
def test_the_comb_holds_every_action_and_no_other(rows):
    """Rows laid over each other (dsl/tables.py ``comb``): the oracle is the rows themselves. Every (state,
    symbol) reads back the row's action, or none where the row has none."""
    bases, slots = tables.comb(rows, 41)
    for state, row in enumerate(rows):
        assert bases[state] + 41 <= len(slots)
        for symbol in range(41):
            slot = slots[bases[state] + symbol]
            found = (slot >> 16) - ((slot >> 15) & 0x10000) if slot & 0xFFFF == state else None
            assert found == row.get(symbol), (state, symbol)
    assert len(slots) <= sum(map(len, rows)) + 41 * 2 + 40   # (dense rows would take 41 slots each)


def test_each_driver_reads_its_part_of_the_file(tmp_path):
    """``compiled``: the packed run (and the grammar after it) only; ``reference``: the reference's tables
    only; neither: both. Each part is what was exported."""
    path = tmp_path / "grammar.tables"
    tables.write_fast_tables(EXPORTED, GRAMMAR, path)
    everything = read_fast_tables(path, GRAMMAR)
    assert everything == EXPORTED
    run = read_fast_tables(path, GRAMMAR.encode("utf-8"), "compiled")
    assert list(run) == ["twin"] and run["twin"].startswith(EXPORTED["twin"])
    assert run["twin"][len(EXPORTED["twin"]):] == GRAMMAR.encode("utf-8")   # (the run is not copied out)
    reference = read_fast_tables(path, GRAMMAR, "reference")
    assert reference == {k: v for k, v in EXPORTED.items() if k != "twin"}
    for twin in {TableParser, parser_mod.FastParser}:
        text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
        part = run if twin is not TableParser else reference
        _same(twin(part).parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH),
              parser_mod._parse_with_lark(text, Source("t", text)))


def test_a_truncated_or_edited_file_is_a_miss(tmp_path):
    path = tmp_path / "grammar.tables"
    tables.write_fast_tables(EXPORTED, GRAMMAR, path)
    data = path.read_bytes()
    twin_end = tables.HEAD_SIZE + len(EXPORTED["twin"])
    for cut in (0, 10, tables.HEAD_SIZE, tables.HEAD_SIZE + 100, twin_end, twin_end + 50, len(data) - 1):
        path.write_bytes(data[:cut])
        assert read_fast_tables(path, GRAMMAR) is None and read_fast_tables(path, GRAMMAR, "reference") is None
        if cut < twin_end + len(GRAMMAR.encode("utf-8")):
            assert read_fast_tables(path, GRAMMAR, "compiled") is None
    path.write_bytes(data)
    edited = GRAMMAR.replace('"pause"', '"pauze"')   # the same length: only the text tells
    assert len(edited) == len(GRAMMAR) and edited != GRAMMAR
    for driver in (None, "compiled", "reference"):
        assert read_fast_tables(path, GRAMMAR, driver) is not None
        assert read_fast_tables(path, edited, driver) is None
        assert read_fast_tables(path, GRAMMAR + "\n", driver) is None


@pytest.mark.skipif(len(TWINS) < 2, reason="the compiled twin is not built")
@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_damaged_run_is_refused(data):
    """Any word of the packed run changed (a damaged file): the compiled twin refuses it with ValueError (its
    checksum), never reading outside the run; so does a run cut short anywhere."""
    compiled = type(TWINS[1])
    run = EXPORTED["twin"]
    words = _run_words(run)
    i = data.draw(st.integers(0, len(words) - 1))
    words[i] ^= data.draw(st.integers(1, 0xFFFFFFFF))
    with pytest.raises(ValueError):
        compiled({"twin": _with_words(run, words, checksum=False)})
    with pytest.raises(ValueError):
        compiled({"twin": run[:data.draw(st.integers(0, 4 * len(words) - 1))]})


@pytest.mark.skipif(len(TWINS) < 2, reason="the compiled twin is not built")
def test_a_run_with_a_value_out_of_range_is_refused():
    """A run whose checksum matches but whose numbers do not fit (another writer's bug): every index the
    driver follows is checked when the run is read (a ValueError, never a read outside the tables)."""
    compiled = type(TWINS[1])
    run = EXPORTED["twin"]
    words = _run_words(run)
    nstates, nsymbols, nterminals, nrules, nlexers = words[3:8]
    off_base, off_comb, off_rules, off_terms, off_los, off_lexers, off_pool = words[13:20]
    assert compiled({"twin": _with_words(run, words)}).action(0, 0) == TWINS[1].action(0, 0)
    changes = {
        1: 4 * len(run), 3: 0xFFFF, 9: nstates, 10: nstates + 7, 11: nsymbols, 13: len(words), 20: 4 * len(words) - 4,
        off_base: len(words), off_rules: nsymbols, off_rules + 2: 5, off_rules + 3: 4, off_rules + 4: 10 ** 6,
        off_rules + 6: len(words) + 3, off_terms: 8, off_terms + 1: nsymbols, off_los: nlexers,
        off_lexers: len(words), off_pool: 10 ** 6,
    }
    for rule in range(nrules):   # a UNIT rule of another size, a PICK of a child past the rule's end
        use, shape, count = words[off_rules + 8 * rule + 2], words[off_rules + 8 * rule + 3], words[off_rules + 8 * rule + 5]
        if use == 0:
            changes.setdefault(off_rules + 8 * rule + 1, 2)
        if shape == 1 and count:
            changes.setdefault(words[off_rules + 8 * rule + 6], words[off_rules + 8 * rule + 1] + 1)
    for slot in range(off_comb, off_comb + 40):   # an action to no state, a reduction by no rule
        if words[slot] & 0xFFFF != 0xFFFF:
            changes.setdefault(slot, (words[slot] & 0xFFFF) | ((nstates + 1) << 16))
    for i, value in changes.items():
        damaged = list(words)
        damaged[i] = value
        with pytest.raises(ValueError):
            compiled({"twin": _with_words(run, damaged)})
    reduction = next(s for s in range(off_comb, off_pool) if words[s] & 0xFFFF != 0xFFFF and words[s] >> 31)
    damaged = list(words)
    damaged[reduction] = (words[reduction] & 0xFFFF) | (((~nrules) & 0xFFFF) << 16)
    with pytest.raises(ValueError):
        compiled({"twin": _with_words(run, damaged)})


def test_damaged_shipped_tables_are_a_miss_not_a_crash(tmp_path, monkeypatch):
    """The shipped file damaged (cut short, or a byte of the compiled twin's run changed): ``get_fast_parser``
    treats it as stale, exports the tables into the user cache and parses as before."""
    monkeypatch.setenv("STIMSCRIPT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "grammar.tables"
    tables.write_fast_tables(EXPORTED, GRAMMAR, path)
    data = path.read_bytes()
    middle = tables.HEAD_SIZE + len(EXPORTED["twin"]) // 2
    text = (ROOT / "examples" / "tka_quadriceps.stim").read_text(encoding="utf-8")
    expected = parser_mod._parse_with_lark(text, Source("t", text))
    for damaged in (data[:len(data) // 2], data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1:]):
        path.write_bytes(damaged)
        monkeypatch.setattr(parser_mod, "_TABLES_FILE", str(path))
        parser_mod.get_fast_parser.cache_clear()
        try:
            fast = parser_mod.get_fast_parser()
            assert isinstance(fast, parser_mod.FastParser)
            _same(fast.parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH), expected)
        finally:
            parser_mod.get_fast_parser.cache_clear()
    assert read_fast_tables(tables.fast_cache_path(GRAMMAR), GRAMMAR) is not None


def test_shipped_tables_match_the_grammar_file_as_it_is_on_disk(tmp_path):
    """The shipped export holds the grammar file's own bytes (``get_fast_parser`` compares those, unread as
    text): a file with CRLF line ends (a Windows checkout) still finds its tables, and a file edited since is
    a miss."""
    grammar = tmp_path / "grammar.lark"
    grammar.write_bytes(GRAMMAR.replace("\n", "\r\n").encode("utf-8"))
    tables.build_shipped(grammar, tmp_path / "grammar.lalr")
    shipped = tmp_path / "grammar.tables"
    for driver in (None, "compiled", "reference"):
        assert read_fast_tables(shipped, grammar.read_bytes(), driver) is not None
        assert read_fast_tables(shipped, GRAMMAR.encode("utf-8"), driver) is None
