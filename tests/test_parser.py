"""Every construct of docs/language.md parses to the expected AST."""
from __future__ import annotations

from fractions import Fraction as F
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.dsl import ast, parse
from stimscript.errors import ProtocolSyntaxError

VALID = sorted((Path(__file__).resolve().parent / "corpus" / "valid").glob("*.stim"))


def N(value, unit=None):
    return ast.Number(F(value), unit)


def Nm(name):
    return ast.Name(name)


def one(text):
    items = parse(text).items
    assert len(items) == 1
    return items[0]


def expr(text):
    return one(f"param p = {text}").default


def channel_body(text):
    return one("channel c 1 {\n" + text + "\n}").body


def line(text):
    return one("session { repeat 1 { " + text + " } }").blocks[0].lines[0]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_corpus_parses(path):
    proto = parse(path.read_bytes(), str(path))
    assert proto.items
    assert proto.span is not None and proto.span.file == str(path)


def test_version_and_header_plan_per_day():
    proto = parse('stimscript 1\nprotocol "T" {\n reference "R"\n indication "I"\n author "A"\n version "1.0"\n'
                  ' plan 2 sessions per day, 6 weeks\n}')
    assert proto.version == 1
    assert proto.header == ast.Header("T", (
        ast.HeaderField("reference", "R"), ast.HeaderField("indication", "I"),
        ast.HeaderField("author", "A"), ast.HeaderField("version", "1.0")),
        ast.Plan(N(2), "day", N(6)))


def test_plan_per_week_singular_words():
    assert one('protocol "T" { plan 1 session per week, 1 week }').plan == ast.Plan(N(1), "week", N(1))
    assert one('protocol "T" { plan 3 sessions per week, 12 weeks }').plan == ast.Plan(N(3), "week", N(12))


def test_no_version():
    assert parse("param x = 1").version is None


@pytest.mark.parametrize("text, expected", [
    ("param intensity = 40 mA", ast.Param("intensity", N(40, "mA"))),
    ('param intensity = 40 mA "max tolerated"', ast.Param("intensity", N(40, "mA"), description="max tolerated")),
    ("param intensity = 40 mA in 10 mA .. 100 mA", ast.Param("intensity", N(40, "mA"), N(10, "mA"), N(100, "mA"))),
    ('param intensity = 40 mA in 10 mA .. 100 mA "d"',
     ast.Param("intensity", N(40, "mA"), N(10, "mA"), N(100, "mA"), "d")),
    ("param reps = 8 in 4..20", ast.Param("reps", N(8), N(4), N(20))),
])
def test_params(text, expected):
    assert one(text) == expected


def test_electrodes():
    assert one("electrode prox 7.6 cm x 12.7 cm") == ast.Electrode("prox", width=N(F(76, 10), "cm"),
                                                                    height=N(F(127, 10), "cm"))
    assert one("electrode pad 25 cm2") == ast.Electrode("pad", area=N(25, "cm2"))
    assert one("electrode pad 50 mm x 9 cm") == ast.Electrode("pad", width=N(50, "mm"), height=N(9, "cm"))


def test_channel_statements():
    ch = one("channel quad 1 {\n site vastus_medialis right\n electrodes prox -> dist\n"
             " pulse biphasic 250 us gap 50 us\n frequency 50 Hz\n amplitude intensity\n}")
    assert ch == ast.Channel("quad", 1, (
        ast.Site(Nm("vastus_medialis"), "right"),
        ast.ElectrodePair(Nm("prox"), Nm("dist")),
        ast.Pulse("biphasic", width=N(250, "us"), gap=N(50, "us")),
        ast.Setting("frequency", N(50, "Hz")),
        ast.Setting("amplitude", Nm("intensity")),
    ))
    assert ch.name_span.line == 1 and ch.name_span.column == 9
    assert ch.number_span.column == 14


@pytest.mark.parametrize("text, site", [
    ("site soleus", ast.Site(Nm("soleus"))),
    ("site soleus left", ast.Site(Nm("soleus"), "left")),
    ("site soleus right", ast.Site(Nm("soleus"), "right")),
])
def test_sites(text, site):
    assert channel_body(text) == (site,)


@pytest.mark.parametrize("text, pulse", [
    ("pulse monophasic 300 us", ast.Pulse("monophasic", width=N(300, "us"))),
    ("pulse biphasic 250 us", ast.Pulse("biphasic", width=N(250, "us"))),
    ("pulse biphasic 250 us gap 50 us", ast.Pulse("biphasic", width=N(250, "us"), gap=N(50, "us"))),
    ("pulse asymmetric 300 us ratio 4", ast.Pulse("asymmetric", width=N(300, "us"), ratio=N(4))),
    ("pulse asymmetric 300 us ratio 4 gap 50 us",
     ast.Pulse("asymmetric", width=N(300, "us"), ratio=N(4), gap=N(50, "us"))),
    ("pulse burst 2.5 kHz for 10 ms", ast.Pulse("burst", carrier=N(F(5, 2), "kHz"), duration=N(10, "ms"))),
    ("pulse doublet 250 us spacing 5 ms", ast.Pulse("doublet", width=N(250, "us"), spacing=N(5, "ms"))),
    ("pulse shape { +1.0 for 200 us; 0 for 50 us; -0.25 for 800 us }", ast.Pulse("shape", phases=(
        ast.ShapePhase(N(1), N(200, "us")), ast.ShapePhase(N(0), N(50, "us")),
        ast.ShapePhase(ast.Neg(N(F(1, 4))), N(800, "us"))))),
    ("pulse shape {\n  1 for 200 us\n  -1 for 200 us\n}", ast.Pulse("shape", phases=(
        ast.ShapePhase(N(1), N(200, "us")), ast.ShapePhase(ast.Neg(N(1)), N(200, "us"))))),
])
def test_pulse_kinds(text, pulse):
    assert channel_body(text) == (pulse,)


def test_cycle_separators_and_omitted_steps():
    full = ast.Cycle("c", (ast.CycleStep("ramp_up", N(3, "s")), ast.CycleStep("hold", N(12, "s")),
                           ast.CycleStep("ramp_down", N(0, "s")), ast.CycleStep("rest", N(45, "s"))))
    assert one("cycle c { ramp up 3 s; hold 12 s; ramp down 0 s; rest 45 s }") == full
    assert one("cycle c {\n ramp up 3 s\n hold 12 s\n ramp down 0 s\n rest 45 s\n}") == full
    assert one("cycle c {\n ramp up 3 s; hold 12 s\n\n ramp down 0 s;;\n rest 45 s;\n}") == full
    assert one("cycle c { hold 5 s }") == ast.Cycle("c", (ast.CycleStep("hold", N(5, "s")),))
    assert one("cycle c {}") == ast.Cycle("c", ())


def test_session_blocks():
    s = one("session {\n repeat 15 {\n  quad: contraction\n }\n pause 30 s\n for 10 min {\n  quad: c\n }\n}")
    assert s == ast.Session((
        ast.Repeat(N(15), (ast.Line((Nm("quad"),), Nm("contraction")),)),
        ast.Pause(N(30, "s")),
        ast.For(N(10, "min"), (ast.Line((Nm("quad"),), Nm("c")),)),
    ))


def test_parallel_lines_channel_lists_and_after():
    block = one("session { repeat 10 {\n quad, hams: contraction\n gastroc: contraction after 7.5 s\n} }").blocks[0]
    assert block.lines == (
        ast.Line((Nm("quad"), Nm("hams")), Nm("contraction")),
        ast.Line((Nm("gastroc"),), Nm("contraction"), after=N(F(15, 2), "s")),
    )


def test_with_overrides():
    assert line("quad: continuous with frequency 5 Hz, amplitude 50% intensity") == ast.Line(
        (Nm("quad"),), Nm("continuous"),
        (ast.Override("frequency", N(5, "Hz")), ast.Override("amplitude", ast.PercentOf(F(50), Nm("intensity")))))
    assert line("q: c with pulse biphasic 300 us after 2 s") == ast.Line(
        (Nm("q"),), Nm("c"), (ast.Override("pulse", ast.Pulse("biphasic", width=N(300, "us"))),), N(2, "s"))
    # after before with, and two with clauses: one merged tuple in source order
    assert line("q: c after 2 s with frequency 5 Hz with amplitude 10 mA") == ast.Line(
        (Nm("q"),), Nm("c"), (ast.Override("frequency", N(5, "Hz")), ast.Override("amplitude", N(10, "mA"))),
        N(2, "s"))
    shaped = line("q: c with pulse shape { 1 for 100 us; -1 for 100 us }")
    assert shaped.overrides[0].value.kind == "shape" and len(shaped.overrides[0].value.phases) == 2


def test_progression():
    prog = one("progression {\n week 1 { contraction.hold = 5 s }\n week 3..6 {\n  quad.frequency = 30 Hz\n"
               "  intensity = 50 mA\n }\n every week { intensity += 5 mA up to 80 mA; c.rest -= 2 s down to 10 s }\n}")
    assert prog == ast.Progression((
        ast.Week(1, 1, (ast.Assignment(ast.Target(("contraction", "hold")), "=", N(5, "s")),)),
        ast.Week(3, 6, (ast.Assignment(ast.Target(("quad", "frequency")), "=", N(30, "Hz")),
                        ast.Assignment(ast.Target(("intensity",)), "=", N(50, "mA")))),
        ast.EveryWeek((ast.Assignment(ast.Target(("intensity",)), "+=", N(5, "mA"), N(80, "mA"), "up"),
                       ast.Assignment(ast.Target(("c", "rest")), "-=", N(2, "s"), N(10, "s"), "down"))),
    ))


@pytest.mark.parametrize("text, bound, quantity", [
    ("max current 60 mA", "max", "current"),
    ("max amplitude 60 mA", "max", "current"),
    ("max frequency 80 Hz", "max", "frequency"),
    ("min frequency 1 Hz", "min", "frequency"),
    ("max pulse width 500 us", "max", "pulse width"),
    ("max phase width 500 us", "max", "pulse width"),
    ("max charge 30 uC", "max", "charge"),
    ("max duration 1 h", "max", "duration"),
    ("max session 45 min", "max", "duration"),
    ("max channels 4", "max", "channels"),
    ("max voltage 100 V", "max", "voltage"),
    ("max density 2 mA / 1 cm2", "max", "density"),
])
def test_limits(text, bound, quantity):
    lim = one("limits { " + text + " }").items[0]
    assert (lim.bound, lim.quantity) == (bound, quantity)


def test_allow_monophasic_top_level_and_in_limits():
    proto = parse("allow monophasic\nlimits { max current 50 mA; allow monophasic }")
    assert proto.items[0] == ast.Allow("monophasic")
    assert proto.allows == (ast.Allow("monophasic"), ast.Allow("monophasic"))


@pytest.mark.parametrize("text, tree", [
    ("1 + 2 * 3", ast.BinOp("+", N(1), ast.BinOp("*", N(2), N(3)))),
    ("(1 + 2) * 3", ast.BinOp("*", ast.BinOp("+", N(1), N(2)), N(3))),
    ("1 - 2 - 3", ast.BinOp("-", ast.BinOp("-", N(1), N(2)), N(3))),
    ("1 - (2 - 3)", ast.BinOp("-", N(1), ast.BinOp("-", N(2), N(3)))),
    ("8 / 4 / 2", ast.BinOp("/", ast.BinOp("/", N(8), N(4)), N(2))),
    ("-a * b", ast.BinOp("*", ast.Neg(Nm("a")), Nm("b"))),
    ("-(a * b)", ast.Neg(ast.BinOp("*", Nm("a"), Nm("b")))),
    ("+a", Nm("a")),
    ("--a", ast.Neg(ast.Neg(Nm("a")))),
    ("50% intensity", ast.PercentOf(F(50), Nm("intensity"))),
    ("50 %", N(50, "%")),
    ("80% intensity - 5 mA", ast.BinOp("-", ast.PercentOf(F(80), Nm("intensity")), N(5, "mA"))),
    ("2 * 50% i", ast.BinOp("*", N(2), ast.PercentOf(F(50), Nm("i")))),
    ("((((1 mA))))", N(1, "mA")),
    ("0.125 s", N(F(1, 8), "s")),
    ("007", N(7)),
    ("1.50", N(F(3, 2))),
    ("40mA", N(40, "mA")),
])
def test_expressions(text, tree):
    assert expr(text) == tree


@pytest.mark.parametrize("spelling, unit", [
    ("us", "us"), ("µs", "us"), ("μs", "us"), ("uA", "uA"), ("µA", "uA"), ("μA", "uA"),
    ("uC", "uC"), ("µC", "uC"), ("μC", "uC"), ("ms", "ms"), ("s", "s"), ("min", "min"), ("h", "h"),
    ("Hz", "Hz"), ("kHz", "kHz"), ("mA", "mA"), ("mV", "mV"), ("V", "V"), ("nC", "nC"), ("mm", "mm"),
    ("cm", "cm"), ("cm2", "cm2"),
])
def test_unit_spellings(spelling, unit):
    assert expr(f"5 {spelling}") == N(5, unit)


def test_comments_crlf_bom_allman_are_layout_only():
    plain = parse("cycle c {\n    hold 5 s\n    rest 10 s\n}\n")
    assert parse("# c\ncycle c { # open\n  hold 5 s # h\n  # line\n  rest 10 s\n} # end\n") == plain
    assert parse("cycle c {\r\n    hold 5 s\r\n    rest 10 s\r\n}\r\n") == plain
    assert parse(b"\xef\xbb\xbfcycle c {\n    hold 5 s\n    rest 10 s\n}\n") == plain
    assert parse("cycle c\n{\n    hold 5 s\n    rest 10 s\n}\n") == plain
    assert parse("cycle c\n\n# between\n{ hold 5 s; rest 10 s }") == plain
    assert parse("cycle c { hold 5 s; rest 10 s }") == plain


def _decode_with_the_codec(data: bytes, name: str) -> str:
    """The oracle: the "utf-8-sig" codec's text, or an E101 at the first bad byte, whose offset in the file is
    the codec's offset (counted after a BOM) plus the BOM's length, showing the text up to it."""
    from stimscript.dsl.parser import Diagnostic, Source, point

    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bom = len(b"\xef\xbb\xbf") if data.startswith(b"\xef\xbb\xbf") else 0
        good = data[bom:bom + exc.start].decode("utf-8", errors="replace")
        source = Source(name, good + "\ufffd")
        raise ProtocolSyntaxError(Diagnostic(
            "E101", f"the file is not UTF-8 text (byte 0x{data[bom + exc.start]:02x} at offset {bom + exc.start})",
            point(source, len(good)), hint="save the protocol as UTF-8")) from None


def test_a_bad_byte_after_a_bom_is_named_at_its_offset_in_the_file():
    from stimscript.dsl.parser import decode

    with pytest.raises(ProtocolSyntaxError) as info:
        decode(b"\xef\xbb\xbfab\xff", "f.stim")
    text = info.value.render()
    assert "byte 0xff at offset 5" in text and "f.stim:1:3" in text


def _outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except ProtocolSyntaxError as exc:
        return "error", exc.render()


_PIECES = [b"\xef\xbb\xbf", b"\xef\xbb", b"\xef", b"cycle c { hold 5 s }\n", "µs é ✓ 𝄞".encode(), b"\xff", b"\xc3",
           b"\xe2\x82", b"\x80", b"\xed\xa0\x80", b"\r\n", b""]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.binary(max_size=6)), max_size=6))
def test_decoding_equals_the_utf_8_sig_codec(pieces):
    """A BOM cut off by hand and the rest decoded as UTF-8 gives what the "utf-8-sig" codec gives: the same
    text, or an E101 at the same bad byte (its offset in the file, and the text shown up to it)."""
    from stimscript.dsl.parser import decode

    data = b"".join(pieces)
    assert _outcome(decode, data, "f.stim") == _outcome(_decode_with_the_codec, data, "f.stim")


def test_strings_unescape():
    assert one(r'protocol "a \"b\" c\\d \n \t \q" {}').title == 'a "b" c\\d \n \t q'


_ESCAPED = {"n": "\n", "t": "\t"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["\\n", "\\t", '\\"', "\\\\", "\\q", "\\ ", "a", " ", "µ", "\\é"]),
                          st.text(alphabet=st.characters(blacklist_characters='"\\\n\r'), max_size=8)),
                max_size=12))
def test_string_literals_mean_what_they_escape(pieces):
    """A title written with any mix of escapes reads back as the escapes say, whether or not it escapes
    anything (oracle: each piece on its own: a backslash makes the next character itself, but n and t)."""
    literal = "".join(pieces)
    meant = "".join(_ESCAPED.get(p[1], p[1]) if p.startswith("\\") and len(p) == 2 else p for p in pieces)
    assert one(f'protocol "{literal}" {{}}').title == meant


def test_spans_point_at_the_source():
    proto = parse("param a = 1\n\nchannel q 2 {\n    frequency 50 Hz\n}\n", "f.stim")
    setting = proto.channels[0].body[0]
    assert (setting.span.line, setting.span.column) == (4, 5)
    assert str(setting.value.span) == "f.stim:4:15"


def test_keywords_as_names_where_unambiguous():
    assert one("param hold = 5").name == "hold"


def test_statements_need_separators():
    with pytest.raises(ProtocolSyntaxError) as info:
        parse("param a = 1 param b = 2")
    assert info.value.code == "E104" and "newline or `;`" in info.value.render()
