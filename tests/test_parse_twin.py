"""The compiled LALR driver (ext/_lalr.pyx) is the twin of the pure-Python reference (dsl/lalr.py).

Both take the same exported tables. For every text, with a builder that writes down its calls, the compiled
one must make exactly the reference's calls of the AST builder — the same rules in the same order, with the
same spans and the same tokens (text, type and every position) — and fall back exactly where the reference
falls back. With the plain AstBuilder it builds the hot rules itself (numbers, names, lines, blocks, ...):
the tree must be the reference's object for object (classes, every field and span, the order of each
object's ``__dict__``). The oracle is the reference itself, run side by side; each of the compiled lexer's
scanners is compared with ``re`` on the same text. tests/test_fast_parser.py compares both twins with Lark.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stimscript.dsl import parser as parser_mod
from stimscript.dsl import tables
from stimscript.dsl.lalr import Fallback, TableParser, Token, read_fast_tables
from stimscript.dsl.transformer import AstBuilder, new_span
from stimscript.spans import Source, Span

compiled = pytest.importorskip("stimscript.ext._lalr", reason="the Cython extension is not built")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_check  # noqa: E402
import bench_parse  # noqa: E402

GRAMMAR = parser_mod.GRAMMAR.read_text(encoding="utf-8")
EXPORTED = read_fast_tables(tables.SHIPPED_FAST, GRAMMAR) or tables.export_tables(tables.build(GRAMMAR))
FILES = sorted(ROOT.glob("examples/*.stim")) + sorted((ROOT / "tests" / "corpus").rglob("*.stim"))


def _normal(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


TEXTS = [(p.name, _normal(p.read_bytes().decode("utf-8", errors="replace"))) for p in FILES] + [
    ("bench_check.stim", bench_check.make_protocol(500)), ("bench_parse.stim", bench_parse.make_protocol(500)),
    ("bench_check_2000.stim", bench_check.make_protocol(2000))]


def _token(tok) -> tuple:
    return (type(tok), str(tok), tok.type, tok.value, tok.start_pos, tok.end_pos, tok.line, tok.column,
            tok.end_line, tok.end_column)


def _plain(value):
    """A builder argument or result as comparable data: tokens with every attribute, spans with every field
    (in the order of their ``__dict__``), nodes by identity of their class and equality."""
    if isinstance(value, Token):
        return ("token",) + _token(value)
    if isinstance(value, Span):
        return ("span", value.source.name, tuple(vars(value).items())[1:], list(vars(value)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_plain(v) for v in value))
    return (type(value).__name__, repr(value))


class Recorder(AstBuilder):
    """The AST builder, writing down every call a driver makes and what each returned."""

    def __init__(self, source: Source):
        super().__init__(source)
        self.calls: list = []

    def __getattribute__(self, name: str):
        method = super().__getattribute__(name)
        if name.startswith("_") or name in ("position", "span_of", "tok_span", "calls", "source") \
                or not callable(method):
            return method
        calls = super().__getattribute__("calls")

        def record(meta, children):
            entry = [name, _plain(meta), _plain(list(children))]
            calls.append(entry)
            result = method(meta, children)
            entry.append(_plain(result))
            return result

        return record


def _run(driver, text: str, name: str = "t.stim"):
    builder = Recorder(Source(name, text))
    try:
        result = driver.parse(text, builder, parser_mod.MAX_DEPTH)
    except Fallback:
        result = None
    return result, builder.calls


def _deep(a, b, path="protocol"):
    """``a`` and ``b`` are alike object for object: the same classes, ``__dict__`` keys in the same order,
    equal values of the same types (spans field by field, their source by name)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Span):
        assert list(vars(a)) == list(vars(b)), path
        assert a.source.name == b.source.name and a.source.text == b.source.text, path
        assert [v for k, v in vars(a).items() if k != "source"] == [v for k, v in vars(b).items() if k != "source"], path
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        assert list(vars(a)) == list(vars(b)), f"{path}: fields {list(vars(a))} != {list(vars(b))}"
        for key in vars(a):
            _deep(vars(a)[key], vars(b)[key], f"{path}.{key}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            _deep(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _built(driver, text: str, name: str):
    try:
        return driver.parse(text, AstBuilder(Source(name, text)), parser_mod.MAX_DEPTH)
    except Fallback:
        return None


def _alike(text: str, name: str = "t.stim", twin=None) -> bool:
    """Both drivers on ``text``: the same builder calls in the same order, the same result (or both fall
    back); with the plain builder the same tree, object for object. Returns whether they parsed it."""
    twin = twin or compiled.TableParser(EXPORTED)
    reference = TableParser(EXPORTED)
    ours, our_calls = _run(twin, text, name)
    ref, ref_calls = _run(reference, text, name)
    assert (ours is None) == (ref is None), "one twin fell back, the other did not"
    assert our_calls == ref_calls   # (where both fell back: the calls made before the fallback)
    if ref is not None:
        assert _plain(ours) == _plain(ref) and ours == ref
    built, expected = _built(twin, text, name), _built(reference, text, name)
    assert (built is None) == (expected is None), "one twin fell back, the other did not (plain builder)"
    _deep(built, expected)
    return ref is not None


@pytest.mark.parametrize("name, text", TEXTS, ids=[n for n, _ in TEXTS])
def test_every_example_corpus_and_benchmark_file_is_built_alike(name, text):
    _alike(text, name)


def test_one_twin_parses_many_texts_alike():
    """A compiled parser reused for every text (as ``get_fast_parser`` keeps it) gives what the reference
    gives, text after text."""
    shared = compiled.TableParser(EXPORTED)
    for name, text in TEXTS * 2:
        _alike(text, name, shared)


def test_spans_are_made_as_new_span_makes_them():
    text = "stimscript 1\nparam a = 1 mA\n"
    protocol = compiled.TableParser(EXPORTED).parse(text, AstBuilder(Source("t", text)), parser_mod.MAX_DEPTH)
    span = protocol.items[0].span
    expected = new_span(span.source, span.line, span.column, span.end_line, span.end_column, span.start_pos,
                        span.end_pos)
    assert type(span) is Span and list(vars(span).items()) == list(vars(expected).items())
    assert span == Span(span.source, 2, 1, 2, 15, 13, 27)


_PIECES = ["repeat", "for", "week", "us", "mA", "kHz", "cm2", "->", "..", "+=", "-=", "=", "1.5", "..3",
           "limits", "session", "left", "   ", "\t ", " # c\n  ", "\"s t\"", '"a\\"b"', '"\\', "x", "µs", "μA",
           "1 mA", "2.", "3.x", "\n\n", ";", "{", "}", "(", ")", "%", "%i", "stimscript 1", "ch1, ch2: c1",
           "after", "with", "é", "\x00", "\u2028", "\U0001f600", "𝟙"]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(" \t\f\r\n;#{}()%,.:=+-*/\"\\_aAzZ019µμé", max_size=4)),
                max_size=16))
def test_every_scanner_matches_as_re(pieces):
    """Each terminal's scanner (dsl/tables.py ``scanner_spec``) ends its match where ``re`` ends it, from every
    position of the text (or matches nowhere ``re`` does not)."""
    twin = compiled.TableParser(EXPORTED)
    text = "".join(pieces)
    lark = parser_mod.get_parser()
    for terminal in lark.terminals:
        pattern = re.compile(terminal.pattern.to_regexp())
        for pos in range(len(text)):
            m = pattern.match(text, pos)
            expected = m.end() if m is not None and m.end() > pos else -1
            assert twin.scan(terminal.name, text, pos) == expected, (terminal.name, text, pos)


def test_every_terminal_of_the_grammar_has_a_scanner_of_its_own():
    """(Otherwise the compiled lexer asks ``re`` for that terminal: right, but slow.)"""
    slow = [name for name, spec in EXPORTED["scanners"].items() if spec[0] == "re"]
    assert not slow, f"terminals scanned by re: {slow}; teach dsl/tables.py scanner_spec their shape"


@pytest.mark.parametrize("pattern, spec", [
    ("[a-z]+", ("class+", ((97, 122),))),
    ("[A-Z_][a-z0-9]*", ("class class*", ((65, 90), (95, 95)), ((97, 122), (48, 57)))),
    (r"(?:ab|a\+)(?![x-z])", ("words", ("ab", "a+"), ((120, 122),))),
    (r"(?:\+=|=)", ("words", ("+=", "="), None)),
    (r"[^a]+", ("re", r"[^a]+")),
    (r"\w+", ("re", r"\w+")),
    (r"(?:a|b)+", ("class+", ((97, 97), (98, 98)))),   # (re itself reads it as [ab]+)
    (r"(?:ab)+", ("re", r"(?:ab)+")),
    (r"(?:a\|b|c)", ("re", r"(?:a\|b|c)")),
    (r"(?:ab|c)(?!\w)", ("re", r"(?:ab|c)(?!\w)")),
])
def test_scanner_shapes(pattern, spec):
    """Only the shapes the compiled lexer implements are given a scanner; anything else stays with ``re``."""
    assert tables.scanner_spec("re", pattern) == spec


def test_terminals_left_to_re_lex_alike():
    """The compiled lexer's ``re`` path: every regular-expression terminal handed to ``re`` (as a terminal of
    a shape it has no scanner for would be) parses every file alike."""
    lark = parser_mod.get_parser()
    slow = dict(EXPORTED)
    slow["scanners"] = {t.name: tables.scanner_spec(t.pattern.type, t.pattern.value) if t.pattern.type == "str"
                        else ("re", t.pattern.to_regexp()) for t in lark.terminals}
    slow["twin"] = tables.pack_twin(slow)   # (what the compiled twin reads)
    twin = compiled.TableParser(slow)
    assert slow["twin"] != EXPORTED["twin"]   # (the run names the terminals left to ``re`` and their patterns)
    for name, text in TEXTS[:: max(1, len(TEXTS) // 40)]:
        _alike(text, name, twin)


# edits that reach the drivers' corners: falling back mid-way, a deep stack, many lines, odd characters
_EDITS = ["", " ", "\n", "}", "{", "1", "x", "..", "->", '"', "#", ";", "%", "mA", "week", ",", "(", ")", "µ",
          "\t", "repeat 2 {", "-(" * 60, "é", "\x00", "\U0001f600", '"\U0001f600"', "# \U0001f600\n"]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(TEXTS), st.integers(0, 2**31), st.sampled_from(_EDITS), st.integers(0, 4))
def test_random_edits_are_built_alike(named, seed, insert, width):
    """Delete ``width`` characters somewhere and insert ``insert``: the same calls and result, or the same
    fallback."""
    import random

    name, text = named
    i = random.Random(seed).randrange(max(1, len(text)))
    _alike(text[:i] + insert + text[i + width:], name)


@pytest.mark.parametrize("depth", [50, 99, 100, 101, 400])
def test_a_deep_stack_is_built_alike(depth):
    """Nesting that grows the compiled driver's stack past its first size, up to and beyond the depth limit."""
    for expr in ["(" * depth + "1 mA" + ")" * depth, "-" * depth + "1 mA", "-(" * depth + "1" + ")" * depth]:
        _alike(f"stimscript 1\nparam a = {expr}\n")


def test_a_builder_error_falls_back_alike():
    """An error raised by a builder method (a number literal too long, here) is a fallback for both."""
    text = "stimscript 1\nparam a = " + "1" * 50 + " mA\n"
    assert not _alike(text)
    with pytest.raises(Exception) as info:
        parser_mod.parse(text)
    assert "E106" in str(info.value)


_HEAD = "stimscript 1\ncycle c { hold 1 s }\n"


@pytest.mark.parametrize("text, code", [
    (_HEAD + "session { repeat 2 { q: c after 1 s after 2 s } }\n", "E112"),
    (_HEAD + "session { repeat 2 { q: c\n pause 1 s } }\n", "E113"),
    (_HEAD + "session {\n" + "repeat 2 {\n" * 7 + "q: c\n" + "}\n" * 8, "E114"),
    (_HEAD + "session {\n" + "for 1 min {\n" * 7 + "q: c\n" + "}\n" * 8, "E114"),
    ("stimscript 1\nchannel q 1.5 { frequency 10 Hz }\n", "E111"),
    ("stimscript 1\nprogression { week 2.5 { a = 1 } }\n", "E111"),
    ("stimscript 1\nprogression { week 2..3.5 { a = 1 } }\n", "E111"),
    ("stimscript 1.5\n", "E111"),
    ("stimscript 2\n", "E109"),
    ("param a = 1\nstimscript 1\n", "E108"),
    ("stimscript 1\nstimscript 1\n", "E108"),
    ("stimscript 1\nparam a = " + "2" * 41 + "% b\n", "E106"),
    ("stimscript 1\nelectrode e " + "3" * 41 + " cm x 1 cm\n", "E106"),
    ("stimscript 1\nprogression { week 1 { a += " + "4" * 41 + " mA up to 5 mA } }\n", "E106"),
])
def test_what_the_builder_reports_is_left_to_it(text, code):
    """Where a rule built in the compiled driver would be an error (two ``after`` clauses, a body mixing
    lines and blocks, blocks nested too deep, a number literal too long), the builder's own method decides:
    both twins fall back alike, and parsing reports the error as before."""
    from stimscript.errors import ProtocolSyntaxError

    assert not _alike(text)
    with pytest.raises(ProtocolSyntaxError) as info:
        parser_mod.parse(text)
    assert info.value.diagnostics[0].code == code


@pytest.mark.parametrize("text", [
    _HEAD + "session {\n" + "repeat 2 {\n" * 6 + "q: c\n" + "}\n" * 7,
    _HEAD + "session { for 10 min { repeat 2 { q, h: c with frequency 5 Hz, amplitude 50% i after 1 s }\n pause 2 s "
            "}\n}\n",
    "stimscript 1\nparam a = -(1 mA + 2 mA) * 3 / 4 - 5% b\nelectrode e 20 cm2\nchannel q 1 { electrodes a -> b "
    "}\nprogression { every week { a.b -= 1 mA down to 2 mA; c = 1 } }\n",
    'protocol "t" { author "a \\"b\\"" }\nchannel q 1 { site "x \\" y" left; site rectus both; site soleus }\n'
    "limits { max current 10 mA; min pulse width 20 us; allow S005 }\nallow monophasic\n"
    "progression { week 1 { a = 1 }; week 2..3 { a = 2 }; week 4.. { a = 3 } }\n",
])
def test_the_rules_built_in_the_driver_build_what_the_builder_builds(text):
    assert _alike(text)
