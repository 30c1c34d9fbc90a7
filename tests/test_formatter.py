"""The formatter: golden output, exact decimals, minimal parentheses, comments, idempotence, round trip,
and the ``stimscript fmt`` command."""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from stimscript.cli import cli
from stimscript.dsl import ast, format_protocol, format_text, parse
from stimscript.dsl.formatter import FormatError, format_decimal, format_expr

ROOT = Path(__file__).resolve().parent.parent
VALID = sorted((ROOT / "tests" / "corpus" / "valid").glob("*.stim"))
EXAMPLES = sorted((ROOT / "examples").glob("*.stim"))

DESIGN_EXAMPLE = (Path(__file__).parent / "data" / "design_example.stim").read_text(encoding="utf-8")


def fmt(text: str) -> str:
    return format_text(text)


def test_design_example_is_canonical():
    assert fmt(DESIGN_EXAMPLE) == DESIGN_EXAMPLE
    assert format_protocol(parse(DESIGN_EXAMPLE)) == DESIGN_EXAMPLE


def test_design_example_from_a_messy_layout():
    messy = (
        "\ufeffstimscript 1;protocol \"Quadriceps NMES after total knee arthroplasty\"\r\n{reference "
        "\"Stevens-Lapsley JE et al. Phys Ther. 2012;92(2):210-226\"; indication \"quadriceps weakness after "
        "total knee arthroplasty\"\r\n plan 2 sessions per day , 6 weeks}\r\n"
        "param intensity=40mA in 10 mA..100.000 mA \"maximum tolerated\"\r\n"
        "electrode prox 7.60 cm x 12.7 cm;electrode dist (7.6 cm) x 12.7cm\n\n\n"
        "channel quad 1\n{\n\tsite vastus_medialis right;electrodes prox->dist\n"
        "  pulse biphasic 250 µs gap 50 μs; frequency 50 Hz; amplitude (intensity)\n}\n"
        "cycle contraction { ramp up 3 s; hold 12 s; ramp down 0 s; rest 45 s }\n"
        "session { repeat 15 { quad: contraction } }"
    )
    assert fmt(messy) == DESIGN_EXAMPLE


@pytest.mark.parametrize("path", VALID + EXAMPLES, ids=lambda p: p.name)
def test_round_trip_and_idempotence(path):
    text = path.read_text(encoding="utf-8")
    once = fmt(text)
    assert parse(once) == parse(text)
    assert fmt(once) == once
    bare = format_protocol(parse(text), comments=False)
    assert "#" not in bare.replace('"#', "")
    assert parse(bare) == parse(text)
    assert format_protocol(parse(bare)) == bare


@pytest.mark.parametrize("value, text", [
    (Fraction(0), "0"), (Fraction(5), "5"), (Fraction(3, 2), "1.5"), (Fraction(1, 8), "0.125"),
    (Fraction(76, 10), "7.6"), (Fraction(1, 10**30), "0." + "0" * 29 + "1"),
    (Fraction(10**39), "1" + "0" * 39), (Fraction(123456789, 10**9), "0.123456789"),
])
def test_exact_decimals(value, text):
    assert format_decimal(value) == text
    assert Fraction(text) == value


def test_non_decimal_or_negative_literal_is_refused():
    with pytest.raises(FormatError):
        format_decimal(Fraction(1, 3))
    with pytest.raises(FormatError):
        format_decimal(Fraction(-1))


def test_long_decimals_are_never_floats():
    text = "param x = 0.1234567890123456789 mA\n"
    assert fmt(text) == text
    assert fmt("param x = 1.50000 s") == "param x = 1.5 s\n"
    assert fmt("param x = 007 s") == "param x = 7 s\n"


@pytest.mark.parametrize("source, canonical", [
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a + (b + c)", "a + (b + c)"),
    ("a / (b / c)", "a / (b / c)"),
    ("(a / b) / c", "a / b / c"),
    ("a * (b / c)", "a * (b / c)"),
    ("(a * b) + c", "a * b + c"),
    ("a * (b + c)", "a * (b + c)"),
    ("(a + b) * c", "(a + b) * c"),
    ("-(a + b)", "-(a + b)"),
    ("-(a * b)", "-(a * b)"),
    ("(-a) * b", "-a * b"),
    ("- - a", "--a"),
    ("a - -b", "a - -b"),
    ("+a", "a"),
    ("((((1 mA))))", "1 mA"),
    ("(50% intensity) * 2", "50% intensity * 2"),
    ("2 * (50%)", "2 * 50%"),
    ("5 µs + 3 μs", "5 us + 3 us"),
    ("5 µA + 3 uA + 1 µC", "5 uA + 3 uA + 1 uC"),
    ("10 mA / 1 cm2", "10 mA / 1 cm2"),
])
def test_minimal_parentheses_and_units(source, canonical):
    out = fmt(f"param p = {source}")
    assert out == f"param p = {canonical}\n"
    assert parse(out) == parse(f"param p = {source}")


def test_format_expr_on_hand_built_trees():
    a, b, c = ast.Name("a"), ast.Name("b"), ast.Name("c")
    assert format_expr(ast.BinOp("-", a, ast.BinOp("-", b, c))) == "a - (b - c)"
    assert format_expr(ast.BinOp("-", ast.BinOp("-", a, b), c)) == "a - b - c"
    assert format_expr(ast.Neg(ast.Neg(ast.Number(Fraction(5), "mA")))) == "--5 mA"
    assert format_expr(ast.PercentOf(Fraction(125, 10), a)) == "12.5% a"


def test_strings_are_re_escaped():
    text = r'protocol "a \"quoted\" back\\slash\nnew\tline # not a comment \q" {}'
    out = fmt(text)
    assert out == 'protocol "a \\"quoted\\" back\\\\slash\\nnew\\tline # not a comment q" {}\n'
    assert parse(out) == parse(text)


def test_line_order_with_then_after_and_with_clauses_merge():
    text = ("session { repeat 2 { a, b: c after 2 s with amplitude 50% i with frequency 5 Hz, "
            "pulse shape { 1 for 200 us; -1 for 200 us } } }")
    out = fmt(text)
    assert ("        a, b: c with amplitude 50% i, frequency 5 Hz, pulse shape { 1 for 200 us; -1 for 200 us }"
            " after 2 s\n") in out
    assert parse(out) == parse(text)


def test_pulse_shapes_and_blocks():
    text = """channel c 1 { pulse shape { +1.0 for 200 us; 0 for 50 us; -0.25 for 800 us } }
channel d 2 { pulse asymmetric 300 us ratio 4 gap 50 us; pulse burst 2.5 kHz for 10 ms
pulse doublet 250 µs spacing 5 ms; pulse monophasic 300 us; pulse shape {} }"""
    assert fmt(text) == """channel c 1 {
    pulse shape {
        1 for 200 us
        0 for 50 us
        -0.25 for 800 us
    }
}

channel d 2 {
    pulse asymmetric 300 us ratio 4 gap 50 us
    pulse burst 2.5 kHz for 10 ms
    pulse doublet 250 us spacing 5 ms
    pulse monophasic 300 us
    pulse shape {}
}
"""


def test_progression_limits_plan_and_grouping():
    text = """stimscript 1
protocol "t" { plan 1 session per week, 1 week; author "me" }
param a = 1 mA
param b = 2 mA in 1 mA .. 3 mA
electrode e 25 cm2
allow monophasic
progression { week 1 { a = 2 mA }
week 3..3 { a = 3 mA }
week 4..6 { c.hold += 1 s up to 9 s; q.frequency -= 5 Hz down to 20 Hz }
every week { a += 1 mA up to 9 mA } }
limits { max amplitude 60 mA; min phase width 10 us; max session 1 h; allow monophasic }"""
    assert fmt(text) == """stimscript 1

protocol "t" {
    author "me"
    plan 1 session per week, 1 week
}

param a = 1 mA
param b = 2 mA in 1 mA .. 3 mA

electrode e 25 cm2

allow monophasic

progression {
    week 1 {
        a = 2 mA
    }
    week 3 {
        a = 3 mA
    }
    week 4..6 {
        c.hold += 1 s up to 9 s
        q.frequency -= 5 Hz down to 20 Hz
    }
    every week {
        a += 1 mA up to 9 mA
    }
}

limits {
    max current 60 mA
    min pulse width 10 us
    max duration 1 h
    allow monophasic
}
"""


def test_empty_and_comment_only_files():
    assert fmt("") == ""
    assert fmt("\n\n;;\n") == ""
    assert fmt("# only a comment\n\n# and another\n") == "# only a comment\n\n# and another\n"


def test_comments_are_kept():
    text = """# file header
# second line

stimscript 1  # the version

# about the param
param x = 5 mA  # trailing
param y = 6 mA

channel c 1 {  # opening
    # before the site
    site vastus_medialis
    frequency 50 Hz; amplitude x  # after two statements
    # last in the body
}  # after the close

cycle k { hold 1 s; rest 1 s }  # one-liner
# at the end
"""
    out = fmt(text)
    assert out == """# file header
# second line

stimscript 1  # the version

# about the param
param x = 5 mA  # trailing
param y = 6 mA

channel c 1 {  # opening
    # before the site
    site vastus_medialis
    frequency 50 Hz  # after two statements
    amplitude x
    # last in the body
}

# after the close

cycle k {  # one-liner
    hold 1 s
    rest 1 s
}

# at the end
"""
    assert fmt(out) == out
    assert parse(out) == parse(text)


def test_hash_in_string_is_not_a_comment():
    text = 'protocol "a # b" {\n    author "#x"  # real\n}\n'
    assert fmt(text) == text


def test_hand_built_ast_without_spans():
    proto = ast.Protocol(version=1, items=(
        ast.Param("x", ast.Number(Fraction(5), "uA")),
        ast.Cycle("c", (ast.CycleStep("hold", ast.Number(Fraction(1), "s")),)),
    ))
    assert format_protocol(proto) == "stimscript 1\n\nparam x = 5 uA\n\ncycle c {\n    hold 1 s\n}\n"
    assert parse(format_protocol(proto)) == proto


# --- the fmt command ----------------------------------------------------------------------------------
def run(*args, input=None):
    return CliRunner().invoke(cli, ["fmt", *args], input=input)


def test_cli_prints_canonical_form(tmp_path):
    f = tmp_path / "a.stim"
    f.write_text("param  x=5mA", encoding="utf-8")
    r = run(str(f))
    assert r.exit_code == 0, r.output
    assert r.stdout == "param x = 5 mA\n"
    assert f.read_text() == "param  x=5mA"


def test_cli_check_and_write(tmp_path):
    good = tmp_path / "good.stim"
    good.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    bad = tmp_path / "bad.stim"
    bad.write_bytes(DESIGN_EXAMPLE.replace("\n", "\r\n").encode())
    r = run("--check", str(good), str(bad))
    assert r.exit_code == 1
    assert str(bad) in r.stdout and str(good) not in r.stdout
    assert "1 file would be reformatted" in r.stderr
    assert run("--check", str(good)).exit_code == 0
    r = run("-w", str(good), str(bad))
    assert r.exit_code == 0, r.output
    assert bad.read_bytes() == DESIGN_EXAMPLE.encode()
    assert run("--check", str(bad)).exit_code == 0


def test_cli_syntax_error(tmp_path):
    f = tmp_path / "broken.stim"
    f.write_text("param x = 5 mAA\n", encoding="utf-8")
    for args in ([str(f)], ["--check", str(f)], ["-w", str(f)]):
        r = run(*args)
        assert r.exit_code == 1
        assert f"{f}:1:13: error[E103]" in r.stderr
        assert "param x = 5 mAA" in r.stderr and "^^^" in r.stderr
        assert "Traceback" not in r.output
    assert f.read_text() == "param x = 5 mAA\n"


def test_cli_usage_errors_and_stdin(tmp_path):
    assert run("--check", "--write", "x.stim").exit_code == 2
    assert run(str(tmp_path / "a"), str(tmp_path / "b")).exit_code == 2
    r = run("-", input="param x=1")
    assert r.exit_code == 0 and r.stdout == "param x = 1\n"
    r = run(str(tmp_path / "missing.stim"))
    assert r.exit_code in (1, 2) and "Traceback" not in r.output


def test_cli_diff(tmp_path):
    f = tmp_path / "a.stim"
    f.write_text("param x=1\n", encoding="utf-8")
    r = run("--diff", str(f))
    assert r.exit_code == 0
    assert "-param x=1" in r.stdout and "+param x = 1" in r.stdout


def test_help_mentions_comments():
    r = CliRunner().invoke(cli, ["fmt", "--help"])
    assert r.exit_code == 0 and "Comments" in r.stdout


def test_sets_open_weeks_and_custom_sites():
    text = """channel q 1 { site "3 cm distal to the fibular head" left; site tibialis_anterior both }
session { repeat 3 { repeat 10 { q: c }; pause 2 min }
for 10 min { for 2 min { q: continuous }; pause 30 s } }
progression { week 2.. { c.hold = 5 s } week 1..1 { c.rest = 9 s } }"""
    out = fmt(text)
    assert out == """channel q 1 {
    site "3 cm distal to the fibular head" left
    site tibialis_anterior both
}

session {
    repeat 3 {
        repeat 10 {
            q: c
        }
        pause 2 min
    }
    for 10 min {
        for 2 min {
            q: continuous
        }
        pause 30 s
    }
}

progression {
    week 2.. {
        c.hold = 5 s
    }
    week 1 {
        c.rest = 9 s
    }
}
"""
    assert parse(out) == parse(text) and fmt(out) == out
    sets = parse(text).sessions[0].blocks
    assert [type(b).__name__ for b in sets[0].blocks] == ["Repeat", "Pause"] and sets[0].lines == ()
    weeks = parse(text).progressions[0].weeks
    assert (weeks[0].first, weeks[0].last, weeks[1].first, weeks[1].last) == (2, None, 1, 1)
