"""Every file of tests/corpus/syntax/ fails to parse with the code and position of its first line
(``# expect: E104 3:17``); plus inputs that cannot live in the corpus as text (binary, non-UTF-8)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from stimscript.dsl import parse
from stimscript.errors import ProtocolSyntaxError, StimscriptError

CORPUS = Path(__file__).resolve().parent / "corpus" / "syntax"
FILES = sorted(CORPUS.glob("*.stim"))
EXPECT = re.compile(r"# expect: (E\d{3}) (\d+):(\d+)")


def test_corpus_is_big_enough():
    assert len(FILES) >= 30


def check_rendering(exc: ProtocolSyntaxError, name: str, text: str, code: str, line: int, column: int):
    rendered = exc.render()
    assert rendered.startswith(f"{name}:{line}:{column}: error[{code}]: ")
    source_line = text.split("\n")[line - 1] if line <= len(text.split("\n")) else ""
    lines = rendered.split("\n")
    # the source line with its gutter; a tab shows as a blank, other control characters as U+FFFD (one column
    # each, never acting on the terminal)
    shown = re.sub(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]", "\ufffd", source_line.replace(chr(9), " "))
    assert f" {line} | {shown}" in lines
    caret = lines[lines.index(f" {line} | {shown}") + 1]
    assert caret.rstrip().endswith("^")
    assert caret.index("^") - caret.index("|") - 2 == column - 1  # the caret sits under the column


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_syntax_corpus(path):
    data = path.read_bytes()
    text = data.decode("utf-8")
    m = EXPECT.match(text)
    assert m, f"{path.name}: first line must be `# expect: CODE LINE:COL`"
    code, line, column = m.group(1), int(m.group(2)), int(m.group(3))
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(data, str(path))
    exc = info.value
    assert (exc.code, exc.line, exc.column) == (code, line, column), exc.render()[:500]
    assert exc.file == str(path)
    check_rendering(exc, str(path), text.lstrip("\ufeff").replace("\r\n", "\n"), code, line, column)


def test_codes_covered():
    codes = {EXPECT.match(p.read_text(encoding="utf-8")).group(1) for p in FILES}
    # E101 (not UTF-8) is covered below with bytes written by the test
    assert {"E100", "E102", "E103", "E104", "E105", "E106", "E107", "E108", "E109", "E110", "E111", "E112"} <= codes


@pytest.mark.parametrize("data, code, line, column", [
    (b"param x = 5 mA\n\xff\xfe\n", "E101", 2, 1),
    (b"protocol \"caf\xe9\" {}\n", "E101", 1, 14),
    (b"\xc3", "E101", 1, 1),
])
def test_not_utf8(data, code, line, column):
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(data, "bad.stim")
    exc = info.value
    assert (exc.code, exc.line, exc.column) == (code, line, column)
    assert f"bad.stim:{line}:{column}: error[{code}]" in exc.render()
    assert "^" in exc.render()


@pytest.mark.parametrize("data", [
    bytes(range(256)),
    bytes(range(256))[::-1],
    b"\x00" * 100,
    b"\x7fELF\x02\x01\x01\x00" + bytes(50),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "stimscript 1\n\x00\x01\x02 channel".encode(),
    b"PK\x03\x04" + b"\xff" * 20,
])
def test_binary_garbage(data):
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(data, "garbage.bin")
    exc = info.value
    assert exc.code in {"E100", "E101", "E104"}
    assert exc.render().startswith(f"garbage.bin:{exc.line}:{exc.column}: error[{exc.code}]")


@pytest.mark.parametrize("text", ["", "\n\n\n", "# only a comment", ";;;", "\ufeff", "\r\n\r\n", "  \t  "])
def test_empty_ish_files_are_syntactically_valid(text):
    proto = parse(text)
    assert proto.items == () and proto.version is None


def test_balanced_deep_parentheses_parse_flat():
    # 10 000 nested parentheses around one atom add no tree depth: the parser accepts them (iteratively)
    proto = parse("param x = " + "(" * 10000 + "1 mA" + ")" * 10000)
    assert proto.params[0].default == parse("param x = 1 mA").params[0].default


@pytest.mark.parametrize("text, code", [
    ("param x = " + "-" * 5000 + "1", "E107"),
    ("param x = " + "(" * 10000 + "1", "E105"),
    ("param x = " + "1" * 10000, "E106"),
    ("param x = " + "9" * 41, "E106"),
    ("cycle c {" * 3000, "E104"),
    ("session {\n" + "repeat 2 {\n" * 500, "E105"),
    ("session {\n" + "repeat 2 {\n" * 500 + "}\n" * 501, "E114"),
    ("session {\n" + "repeat 2 {\n" * 7 + "q: c\n" + "}\n" * 8, "E114"),
])
def test_absurd_inputs(text, code):
    with pytest.raises(ProtocolSyntaxError) as info:
        parse(text)
    assert info.value.code == code


def test_syntax_error_is_a_stimscript_error():
    assert issubclass(ProtocolSyntaxError, StimscriptError)
