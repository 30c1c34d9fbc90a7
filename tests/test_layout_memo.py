"""The checker keeps each session block's layout for weeks where what it reads is unchanged, amplitudes aside
(compiler/checker.py ``_session_layout``, ``_block``; ``lowering.place_block``): every week must resolve exactly
as without the memo —
channel uses with their spans, trains, the use of each train, segments, shapes, channels, diagnostics."""
from __future__ import annotations

import glob
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.compiler import checker
from stimscript.compiler.checker import Analysis, analyse
from stimscript.dsl import parse
from stimscript.profile import LOOPBACK_PROFILE
from stimscript.spans import Source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.stim"))) + sorted(
    glob.glob(os.path.join(ROOT, "tests", "corpus", "*", "*.stim")))


def _sp(s):
    return None if s is None else (s.line, s.column, s.end_line, s.end_column)


def _everything(text: str, name: str, memo: bool):
    """Every week's resolved session and the diagnostics, in full (spans of the uses included)."""
    before = checker.set_cache_enabled(memo)
    try:
        try:
            protocol = parse(text, name)
        except Exception:   # a syntax error: nothing to resolve
            return None
        an = Analysis(protocol, protocol.span.source if protocol.span else Source(name, text))
        results, diags = analyse(an, LOOPBACK_PROFILE)
    finally:
        checker.set_cache_enabled(before)
    weeks = []
    for week, res in sorted(results.items()):
        r = res.resolved
        if r is None:
            weeks.append((week, None, [d.message for d in res.diagnostics]))
            continue
        uses = [(u, {k: _sp(v) for k, v in u.spans.items()}) for u in r.uses]
        weeks.append((week, r.session, r.duration_us, uses, r.trains, r.train_uses, r.segments, r.shapes,
                      r.channels, [(d.code, d.message, _sp(d.span)) for d in res.diagnostics]))
    return weeks, [(d.code, d.severity, d.message, _sp(d.span), d.hint) for d in diags]


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.relpath(p, ROOT))
def test_every_file_resolves_alike_with_and_without_the_memo(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    assert _everything(text, path, True) == _everything(text, path, False)


def _bench(lines: int = 500) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_parse", os.path.join(ROOT, "benchmarks", "bench_parse.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_protocol(lines)


def test_the_benchmark_protocol_resolves_alike_and_reuses_layouts():
    text = _bench()
    memo = _everything(text, "bench.stim", True)
    assert memo == _everything(text, "bench.stim", False)
    protocol = parse(text, "bench.stim")
    an = Analysis(protocol, protocol.span.source)
    made = []
    original = checker.lay_out_block

    def counting(*args, **kwargs):
        made.append(1)
        return original(*args, **kwargs)

    checker.lay_out_block = counting
    try:
        analyse(an, LOOPBACK_PROFILE)
    finally:
        checker.lay_out_block = original
    # 12 weeks, 5 distinct holds of c1 and the intensity rising every week: a block is laid out again only
    # when a cycle of its changed (c1, weeks 2-5) or its uses' amplitudes meet or part (other trains merge);
    # else its layout is moved and given each week's amplitudes. Without the memo: 12 x the blocks.
    blocks = len(an.session.blocks)
    assert blocks < len(made) < 3 * blocks


PROGRESSIVE = """stimscript 1
protocol "memo" {{
    plan 1 sessions per week, {weeks} weeks
}}
param a = {a} mA in 1 mA .. 80 mA
param b = {b} mA in 1 mA .. 80 mA
param gap = {gap} s in 0 s .. 10 s
electrode p 5 cm x 5 cm
electrode q 5 cm x 5 cm
electrode r 5 cm x 5 cm
electrode s 5 cm x 5 cm
channel one 1 {{
    electrodes p -> q
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude a
}}
channel two 2 {{
    electrodes r -> s
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude b
}}
cycle c {{ ramp up 1 s; hold {hold} s; ramp down 1 s; rest 2 s }}
session {{
    repeat 2 {{
        repeat {n} {{ one: c with amplitude {ov} mA }}
        repeat {n} {{ one, two: c }}
        pause gap
    }}
    for 20 s {{ two: c after gap }}
}}
progression {{
    every week {{
        a += {da} mA up to 80 mA
        b -= {db} mA down to 1 mA
    }}
    week 2..3 {{ c.hold = {hold2} s }}
    week 4 {{ one.amplitude = {amp4} mA }}
}}
"""


@settings(max_examples=40, deadline=None)
@given(weeks=st.integers(1, 6), a=st.integers(5, 30), b=st.integers(5, 30), gap=st.integers(0, 3),
       hold=st.integers(0, 3), hold2=st.integers(1, 3), n=st.integers(1, 3), ov=st.integers(5, 35),
       da=st.integers(0, 3), db=st.integers(0, 3), amp4=st.integers(5, 30))
def test_progressions_where_amplitudes_meet_resolve_alike(**values):
    """Amplitudes that become equal (and unequal again) across weeks change which trains merge: the memo
    must notice (an override equal to the channel's amplitude in some week, two channels crossing)."""
    text = PROGRESSIVE.format(**values)
    assert _everything(text, "memo.stim", True) == _everything(text, "memo.stim", False)
