"""Hypothesis strategies for StimScript: syntax-valid ASTs, their text with layout noise, and
semantically sensible protocol text (docs/language.md) for checker/compiler tests.

    from tests.strategies import protocol_asts, protocol_texts, sensible_protocol_texts

* ``protocol_asts()``      -> ast.Protocol (no spans) that the parser can produce; any names/units mix,
                              so usually *not* semantically valid.
* ``protocol_texts()``     -> (text, ast) where ``parse(text) == ast``: the canonical text of a generated
                              AST with noise that must not change the tree (``;`` for newlines, Allman
                              braces, comments, blank lines, µ/μ spellings, ``5.0`` for ``5``, redundant
                              parentheses, tabs, CRLF, a BOM).
* ``sensible_protocol_texts()`` -> text of a protocol that should pass the checker on the loopback
                              profile: atlas sites, declared electrodes, every channel with pulse,
                              frequency, amplitude and electrodes, charge-balanced pulses, modest values.
"""
from __future__ import annotations

import re
from fractions import Fraction

from hypothesis import strategies as st

from stimscript.compiler.ir import Train
from stimscript.dsl import ast
from stimscript.dsl.formatter import format_protocol

#: every word the grammar uses as a keyword, plus the unit spellings: generated names avoid them all
KEYWORDS = frozenset("""
stimscript protocol plan sessions session per day week weeks param in electrode x channel site left right
electrodes frequency amplitude pulse monophasic biphasic gap asymmetric ratio burst for doublet spacing shape
cycle ramp up hold down rest repeat pause with after progression every to limits max min current width phase
charge duration channels voltage density allow
us ms s min h Hz kHz uA mA mV V nC uC mm cm cm2
""".split())

UNITS = ("us", "ms", "s", "min", "h", "Hz", "kHz", "uA", "mA", "mV", "V", "nC", "uC", "mm", "cm", "cm2")
HEADER_KEYS = ("reference", "indication", "author", "version", "description", "notes")
LIMIT_QUANTITIES = ("current", "frequency", "pulse width", "charge", "duration", "channels", "voltage", "density")

#: atlas names the language reference promises (the package atlas holds at least these)
ATLAS = ("vastus_medialis", "vastus_lateralis", "rectus_femoris", "biceps_femoris", "semitendinosus",
         "gluteus_maximus", "gluteus_medius", "tibialis_anterior", "gastrocnemius_medialis",
         "gastrocnemius_lateralis", "soleus", "peroneus_longus", "common_peroneal_nerve", "biceps_brachii",
         "triceps_brachii", "deltoid_anterior", "deltoid_middle", "extensor_carpi_radialis",
         "extensor_digitorum", "flexor_carpi_radialis", "wrist_extensors", "supraspinatus", "erector_spinae",
         "abdominals")

# --- leaves ---------------------------------------------------------------------------------------------
names = st.from_regex(r"\A[a-z_][a-z0-9_]{0,7}\Z").filter(lambda n: n not in KEYWORDS)

#: string values: any printable text plus the characters that need escapes (no CR: the parser turns it
#: into a newline before lexing, so no literal can hold one)
strings = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r")
                  | st.sampled_from('"\\\n\t#'), max_size=20)

decimals = st.builds(lambda n, d: Fraction(n, 10**d), st.integers(0, 10**6), st.integers(0, 4))


@st.composite
def _leaf(draw):
    kind = draw(st.sampled_from(["number", "quantity", "quantity", "percent", "name", "percent_of"]))
    if kind == "number":
        return ast.Number(draw(decimals))
    if kind == "quantity":
        return ast.Number(draw(decimals), draw(st.sampled_from(UNITS)))
    if kind == "percent":
        return ast.Number(draw(decimals), "%")
    if kind == "name":
        return ast.Name(draw(names))
    return ast.PercentOf(draw(decimals), ast.Name(draw(names)))


def _extend(children):
    return st.one_of(
        st.builds(ast.Neg, children),
        st.builds(ast.BinOp, st.sampled_from("+-*/"), children, children),
    )


exprs = st.recursive(_leaf(), _extend, max_leaves=6)
small = st.lists  # alias used below for readability


def _opt(strategy):
    return st.none() | strategy


# --- statements -----------------------------------------------------------------------------------------
@st.composite
def pulses(draw, allow_shape=True):
    kinds = ["monophasic", "biphasic", "asymmetric", "burst", "doublet"] + (["shape"] if allow_shape else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "monophasic":
        return ast.Pulse("monophasic", width=draw(exprs))
    if kind == "biphasic":
        return ast.Pulse("biphasic", width=draw(exprs), gap=draw(_opt(exprs)))
    if kind == "asymmetric":
        return ast.Pulse("asymmetric", width=draw(exprs), ratio=draw(exprs), gap=draw(_opt(exprs)))
    if kind == "burst":
        return ast.Pulse("burst", carrier=draw(exprs), duration=draw(exprs))
    if kind == "doublet":
        return ast.Pulse("doublet", width=draw(exprs), spacing=draw(exprs))
    phases = draw(st.lists(st.builds(ast.ShapePhase, exprs, exprs), max_size=3))
    return ast.Pulse("shape", phases=tuple(phases))


channel_stmts = st.one_of(
    st.builds(ast.Site, st.builds(ast.Name, names), st.sampled_from([None, "left", "right", "both"])),
    st.builds(lambda text, side: ast.Site(None, side, text), strings, st.sampled_from([None, "left", "right"])),
    st.builds(ast.ElectrodePair, st.builds(ast.Name, names), st.builds(ast.Name, names)),
    pulses(),
    st.builds(ast.Setting, st.sampled_from(["frequency", "amplitude"]), exprs),
)

overrides = st.one_of(
    st.builds(ast.Override, st.sampled_from(["frequency", "amplitude"]), exprs),
    st.builds(lambda p: ast.Override("pulse", p), pulses()),
)

lines = st.builds(
    lambda chans, cycle, ovs, after: ast.Line(tuple(chans), cycle, tuple(ovs), after),
    st.lists(st.builds(ast.Name, names), min_size=1, max_size=3),
    st.builds(ast.Name, names | st.just("continuous")),
    st.lists(overrides, max_size=2),
    _opt(exprs),
)

_leaf_blocks = st.one_of(
    st.builds(lambda c, ls: ast.Repeat(c, tuple(ls)), exprs, st.lists(lines, max_size=3)),
    st.builds(lambda d, ls: ast.For(d, tuple(ls)), exprs, st.lists(lines, max_size=3)),
    st.builds(ast.Pause, exprs),
)

#: session blocks, sets included: a set's body holds blocks (at least one, else it is a block of lines);
#: nesting stays within the grammar's depth bound (3 levels here)
blocks = st.recursive(
    _leaf_blocks,
    lambda inner: st.one_of(
        st.builds(lambda c, bs: ast.Repeat(c, (), tuple(bs)), exprs, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda d, bs: ast.For(d, (), tuple(bs)), exprs, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=6,
).filter(lambda b: _depth(b) <= 6)


def _depth(block) -> int:
    inner = getattr(block, "blocks", ())
    return 1 + max((_depth(b) for b in inner), default=0)


@st.composite
def assignments(draw):
    bound_kind = draw(st.sampled_from([None, "up", "down"]))
    return ast.Assignment(
        ast.Target(tuple(draw(st.lists(names, min_size=1, max_size=3)))),
        draw(st.sampled_from(["=", "+=", "-="])),
        draw(exprs),
        draw(exprs) if bound_kind else None,
        bound_kind,
    )


@st.composite
def weeks(draw):
    if draw(st.booleans()):
        return ast.EveryWeek(tuple(draw(st.lists(assignments(), max_size=3))))
    first = draw(st.integers(1, 60))
    last = draw(st.sampled_from(["single", "range", "open"]))
    last = first if last == "single" else None if last == "open" else draw(st.integers(first, 60))
    return ast.Week(first, last, tuple(draw(st.lists(assignments(), max_size=3))))


@st.composite
def items(draw):
    kind = draw(st.sampled_from(["header", "param", "electrode", "channel", "cycle", "session",
                                 "progression", "limits", "allow"]))
    if kind == "header":
        fields = draw(st.lists(st.builds(ast.HeaderField, st.sampled_from(HEADER_KEYS), strings), max_size=3))
        plan = draw(_opt(st.builds(ast.Plan, exprs, st.sampled_from(["day", "week"]), exprs)))
        return ast.Header(draw(strings), tuple(fields), plan)
    if kind == "param":
        ranged = draw(st.booleans())
        return ast.Param(draw(names), draw(exprs), draw(exprs) if ranged else None,
                         draw(exprs) if ranged else None, draw(_opt(strings)))
    if kind == "electrode":
        if draw(st.booleans()):
            return ast.Electrode(draw(names), area=draw(exprs))
        return ast.Electrode(draw(names), width=draw(exprs), height=draw(exprs))
    if kind == "channel":
        return ast.Channel(draw(names), draw(st.integers(0, 99)),
                           tuple(draw(st.lists(channel_stmts, max_size=5))))
    if kind == "cycle":
        steps = draw(st.lists(st.builds(ast.CycleStep, st.sampled_from(["ramp_up", "hold", "ramp_down", "rest"]),
                                        exprs), max_size=5))
        return ast.Cycle(draw(names), tuple(steps))
    if kind == "session":
        return ast.Session(tuple(draw(st.lists(blocks, max_size=3))))
    if kind == "progression":
        return ast.Progression(tuple(draw(st.lists(weeks(), max_size=3))))
    if kind == "limits":
        limit = st.builds(ast.Limit, st.sampled_from(["max", "min"]), st.sampled_from(LIMIT_QUANTITIES), exprs)
        allow = st.builds(ast.Allow, names | st.just("monophasic"))
        return ast.Limits(tuple(draw(st.lists(limit | allow, max_size=4))))
    return ast.Allow(draw(names | st.just("monophasic")))


protocol_asts = st.builds(lambda v, its: ast.Protocol(version=v, items=tuple(its)),
                          st.sampled_from([None, 1]), st.lists(items(), max_size=6))


# --- layout noise ---------------------------------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_UNIT_ALT = {"us": ["µs", "μs"], "uA": ["µA", "μA"], "uC": ["µC", "μC"]}


def _outside_strings(text: str, fn) -> str:
    """Apply ``fn`` to every piece of ``text`` that is not inside a string literal."""
    out, last = [], 0
    for m in _STRING.finditer(text):
        out.append(fn(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(fn(text[last:]))
    return "".join(out)


@st.composite
def noisy(draw, text: str) -> str:
    """``text`` rewritten so that it still parses to the same AST."""
    rnd = draw(st.randoms(use_true_random=False))
    p = draw(st.sampled_from([0.0, 0.2, 0.5]))

    def tokens(piece: str) -> str:
        piece = re.sub(r"(?<=\d) (us|uA|uC)\b",
                       lambda m: " " + (rnd.choice(_UNIT_ALT[m.group(1)]) if rnd.random() < p else m.group(1)),
                       piece)
        piece = re.sub(r"(?<![\w.])(\d+)(?![\w.%])", lambda m: m.group(1) + (".0" if rnd.random() < p else ""),
                       piece)
        piece = re.sub(r"(?<![\w.])(\d+(?:\.\d+)?) ((?:us|ms|s|min|h|Hz|kHz|uA|mA|mV|V|nC|uC|mm|cm2|cm)\b)",
                       lambda m: f"({m.group(1)} {m.group(2)})" if rnd.random() < p else m.group(0), piece)
        piece = re.sub(r" \{", lambda m: ("\n{" if rnd.random() < p else " {"), piece)
        piece = re.sub(r" (?=[=:,*/+-])", lambda m: rnd.choice([" ", "\t", "  ", ""]) if rnd.random() < p else " ",
                       piece)
        return piece

    text = _outside_strings(text, tokens)
    out_lines = []
    for line in text.split("\n"):
        stripped = line.strip()
        if rnd.random() < p and out_lines and "#" not in out_lines[-1] and "#" not in line:
            out_lines[-1] += rnd.choice(["; ", ";", " ;\t"]) + stripped
            continue
        if rnd.random() < p / 2:
            out_lines.append(rnd.choice(["", "   ", "# a comment", "\t# ¿µ? \"x\" {", ";"]))
        if rnd.random() < p / 2:
            line += rnd.choice(["  # trailing", "\t#", " ;"])
        out_lines.append(line)
    text = "\n".join(out_lines)
    if rnd.random() < p:
        text = text.replace("\n", "\r\n")
    if rnd.random() < p / 2:
        text = "\ufeff" + text
    return text


@st.composite
def protocol_texts(draw):
    """(text, ast): noisy text whose parse must equal ``ast``."""
    tree = draw(protocol_asts)
    return draw(noisy(format_protocol(tree))), tree


# --- semantically sensible protocols ---------------------------------------------------------------------
@st.composite
def sensible_protocol_texts(draw):
    """A protocol meant to pass the checker (loopback profile) without errors or warnings: small,
    balanced, every channel used, every cycle ramped, warm-ups at <= 10 mA."""
    n_channels = draw(st.integers(1, 4))
    sessions_per = draw(st.sampled_from(["day", "week"]))
    n_sessions = draw(st.integers(1, 3))
    n_weeks = draw(st.integers(1, 8))
    intensity = draw(st.integers(10, 50))
    out = ["stimscript 1", "",
           'protocol "generated" {',
           '    reference "hypothesis"',
           f"    plan {n_sessions} session{'s' if n_sessions > 1 else ''} per {sessions_per}, "
           f"{n_weeks} week{'s' if n_weeks > 1 else ''}",
           "}", "",
           f'param intensity = {intensity} mA in 5 mA .. 60 mA "maximum tolerated"', ""]
    channels = []
    for i in range(1, n_channels + 1):
        w, h = draw(st.sampled_from([(5, 5), (5, 9), (7.6, 12.7), (5, 10)]))
        out += [f"electrode e{i}a {w} cm x {h} cm", f"electrode e{i}b {w} cm x {h} cm"]
    out.append("")
    for i in range(1, n_channels + 1):
        site = draw(st.sampled_from(ATLAS))
        side = draw(st.sampled_from(["", " left", " right"]))
        width = draw(st.sampled_from([200, 250, 300, 350, 400]))
        pulse = draw(st.sampled_from([
            f"biphasic {width} us",
            f"biphasic {width} us gap 50 us",
            f"asymmetric {width // 2} us ratio 2 gap 50 us",
            f"doublet {width} us spacing 5 ms",
            "shape { +1.0 for 200 us; 0 for 50 us; -0.25 for 800 us }",
        ]))
        freq = draw(st.sampled_from([20, 25, 30, 35, 40, 45, 50]))
        amp = draw(st.sampled_from(["intensity", "80% intensity", "intensity - 5 mA", f"{intensity} mA"]))
        name = f"ch{i}"
        channels.append(name)
        out += [f"channel {name} {i} {{", f"    site {site}{side}", f"    electrodes e{i}a -> e{i}b",
                f"    pulse {pulse}", f"    frequency {freq} Hz", f"    amplitude {amp}", "}", ""]
    up, hold, down, rest = (draw(st.integers(1, 3)), draw(st.integers(1, 10)), draw(st.integers(0, 2)),
                            draw(st.integers(5, 30)))
    out += ["cycle work {", f"    ramp up {up} s", f"    hold {hold} s", f"    ramp down {down} s",
            f"    rest {rest} s", "}", "", "session {"]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["repeat", "for", "pause", "warmup"]))
        chans = ", ".join(draw(st.lists(st.sampled_from(channels), min_size=1, max_size=len(channels), unique=True)))
        if kind == "repeat":
            after = draw(st.sampled_from(["", " after 2 s"]))
            out += [f"    repeat {draw(st.integers(1, 5))} {{", f"        {chans}: work{after}", "    }"]
        elif kind == "for":
            out += [f"    for {draw(st.integers(1, 5))} min {{", f"        {chans}: work", "    }"]
        elif kind == "warmup":
            out += [f"    for {draw(st.integers(1, 3))} min {{",
                    f"        {chans}: continuous with frequency 5 Hz, amplitude 20% intensity", "    }"]
        else:
            out.append(f"    pause {draw(st.integers(10, 120))} s")
    out += ["    repeat 2 {", f"        {', '.join(channels)}: work", "    }", "}", ""]
    if draw(st.booleans()) and n_weeks >= 2:
        out += ["progression {", "    week 1 {", f"        work.hold = {hold} s", "    }",
                "    every week {", "        intensity += 2 mA up to 50 mA", "    }", "}", ""]
    if draw(st.booleans()):
        out += ["limits {", "    max current 80 mA", "    max frequency 100 Hz", "}", ""]
    return "\n".join(out)


# --- the safety rules' channel scans (tests/test_rules_twin.py, tests/test_rules_passes.py) -----------------
@st.composite
def channel_trains(draw, extreme: bool = False) -> list[Train]:
    """One channel's trains: lines one after another, close together, interleaved, or far apart; with
    ``extreme``, onsets and cycle lengths beyond the twin's 64-bit bounds now and then."""
    out = []
    t = draw(st.integers(0, 3)) * 250_000
    for _ in range(draw(st.integers(1, 7))):
        p = draw(st.sampled_from([Fraction(10**6, 50), Fraction(10**6, 7), Fraction(10**6, 333), Fraction(1000, 3),
                                  Fraction(25_000)]))
        on = draw(st.sampled_from([1, 20_000, 333_333, 1_000_000]))
        up = draw(st.sampled_from([0, 999, on // 3]))
        rest = draw(st.sampled_from([0, 1, 20_000, 700_000, 3_000_000]))
        if extreme and draw(st.booleans()):
            rest = draw(st.sampled_from([2**59, 2**61, 2**64]))
        cycles = draw(st.integers(1, 4))
        amp = draw(st.sampled_from([Fraction(40_000), Fraction(7), Fraction(120_001, 7), Fraction(1, 3)]))
        out.append(Train(1, t, cycles, on + rest, on, up, 0, p.numerator, p.denominator, amp.numerator,
                         amp.denominator, draw(st.integers(0, 1))))
        t += draw(st.sampled_from([-(on + rest) * cycles // 2, 0, 1, 400_000, 999_999, 1_000_000, 5_000_000]))
        t = max(0, t) + (on + rest) * cycles * draw(st.sampled_from([0, 1]))
        if extreme and draw(st.booleans()):
            t += draw(st.sampled_from([2**60, 2**63]))
    return out
