"""One run reports every syntax error of a file, each at its real line and column, without cascades."""
from __future__ import annotations

from pathlib import Path

import pytest

from stimscript.dsl import parse
from stimscript.dsl.parser import _top_level_starts
from stimscript.errors import ProtocolSyntaxError

THREE_ERRORS = '''param intensity = 40 mA in 10 mA .. 100 mA
electrode prox 7.6 cm x 12.7 cm
electrode dist 7.6 cm x 12.7 cm x 3
channel quad 1 {
    site vastus_medialis right
    electrodes prox -> dist
    pulse biphasic 250 us gap 50 us
    frequency 50 hz
    amplitude intensity
}
cycle contraction { ramp up 3 s; hold 12 s; rest 45 s }
session {
    repeat 15 { quad: contraction }
    pause
}
'''


def positions(exc: ProtocolSyntaxError):
    return [(d.code, d.span.line, d.span.column) for d in exc.diagnostics]


def test_every_syntax_error_in_one_run():
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(THREE_ERRORS, "m.stim")
    assert positions(info.value) == [("E104", 3, 33), ("E103", 8, 18), ("E104", 14, 10)]
    text = str(info.value)
    assert "m.stim:8:18: error[E103]: unknown unit `hz`" in text and " 8 |     frequency 50 hz" in text


def test_an_unclosed_brace_reports_once():
    text = "cycle c {\n  hold 3 s\ncycle d { hold 1 s }\nsession { repeat 2 { q: c } }\n"
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(text, "u.stim")
    assert len(info.value.diagnostics) == 1


def test_top_level_statements_found_with_allman_braces_strings_and_comments():
    text = 'param a = 1  # x { y\nprotocol "a { b"\n{\n  plan 1 session per day, 1 week\n}\ncycle c { hold 1 s } cycle d { hold 2 s }\n'
    starts = _top_level_starts(text)
    words = [text[s:].split()[0] for s in starts]
    assert words == ["param", "protocol", "cycle", "cycle"]


CORPUS = sorted((Path(__file__).parent / "corpus" / "syntax").glob("*.stim"))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_later_errors_point_inside_the_file_and_after_the_first(path):
    try:
        parse(path.read_bytes(), str(path))
    except ProtocolSyntaxError as exc:
        lines = path.read_bytes().decode("utf-8", "replace").split("\n")
        spans = [d.span for d in exc.diagnostics if d.span is not None]
        assert all(1 <= s.line <= len(lines) + 1 for s in spans)
        assert [s.start_pos for s in spans] == sorted(s.start_pos for s in spans)
