"""The compiled loops of a later week (ext/_resolve.pyx) equal the pure-Python reference in compiler/lowering.py.

* ``place_trains``: the same trains in the same order, the very objects where nothing changes and equal copies
  where the shift or an amplitude does, for any trains, uses, shifts and amplitudes;
* ``replay_uses``: the same channel uses (fields and spans), the same objects where nothing changes, and the
  same amplitudes as (numerator, denominator), for channels' amplitudes, `with amplitude` values and ones that
  reported (the measured amplitude kept);
* ``leaf_trains``: the same trains (every field) for any placements (frequencies as Fractions, ints or floats,
  cycles with and without ramps), starts and amplitudes (Fractions or ints), whether or not the period memo
  knows the frequency;
* ``move_segments``: equal copies ``shift`` µs later (every field, the segment's other values the same
  objects), for any segments and shifts;
* ``leaf_lines``: the same channel uses (fields and spans), sources, shapes, placements and diagnostics for
  the lines of `repeat` and `for` blocks with `after` offsets, `continuous`, zero-length cycles and `with`
  overrides (generated protocols, checked week by week with either);
* the checker resolves every week of the examples, the corpus (the files with errors too) and the benchmark
  protocols alike with either.

Skipped when the extension is not built (STIMSCRIPT_NO_EXTENSIONS=1 runs the reference everywhere).
"""
from __future__ import annotations

import glob
import os
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.compiler import lowering
from stimscript.compiler.checker import Analysis, analyse
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse
from stimscript.dsl import parse
from stimscript.profile import LOOPBACK_PROFILE
from stimscript.spans import Source, Span

try:
    from stimscript.ext import _resolve as twin
except ImportError:   # not built
    twin = None

pytestmark = pytest.mark.skipif(twin is None, reason="the compiled resolve loops are not built")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = Source("twin.stim", "x" * 100)
SPANS = [Span(SRC, 1, c, 1, c + 1, c, c + 1) for c in range(1, 6)]
SHAPES = [PulseShape(((200, 1.0), (200, -1.0)), "biphasic"), PulseShape(((300, 1.0), (300, -1.0)), "biphasic")]
amplitudes = st.fractions(min_value=0, max_value=120_000, max_denominator=50)


def _train(ch, start, amp):
    return Train(ch, start, 3, 10_000, 8_000, 1_000, 1_000, 20_000, 1, amp.numerator, amp.denominator, 0)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(0, 8), uses=st.integers(1, 5), shift=st.integers(-10**6, 10**6))
def test_place_trains_equals_the_reference(data, n, uses, shift):
    amps = data.draw(st.lists(amplitudes, min_size=uses, max_size=uses))
    trains = tuple(_train(data.draw(st.integers(1, 8)), data.draw(st.integers(0, 10**7)),
                          data.draw(st.sampled_from(amps))) for _ in range(n))
    train_uses = tuple(data.draw(st.integers(0, uses - 1)) for _ in range(n))
    shift = data.draw(st.sampled_from([0, shift]))
    amp_nd = [(a.numerator, a.denominator) for a in data.draw(st.permutations(amps))]
    ref: list = []
    lowering.place_trains(trains, train_uses, shift, amp_nd, ref)
    out: list = []
    twin.place_trains(trains, train_uses, shift, amp_nd, out)
    assert out == ref
    assert [a is b for a, b in zip(out, ref)] == [a is t for a, t in zip(ref, trains)]
    for tr, u, new in zip(trains, train_uses, out):
        assert (new.start_us, new.amp_num, new.amp_den) == (tr.start_us + shift, *amp_nd[u])


def _use(name, amp, shape, span):
    spans = {"channel": SPANS[0], "amplitude": span, "frequency": SPANS[2], "line": SPANS[3]}
    return ChannelUse(name, 1, amp, Fraction(50), shape, (), 1000, 5000, 0, "c", spans)


class _Chan:
    def __init__(self, shape):
        self.shape = shape


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(0, 8))
def test_replay_uses_equals_the_reference(data, n):
    chans = {name: _Chan(data.draw(st.sampled_from(SHAPES))) for name in ("a", "b")}
    src_vals: dict = {}
    for name in ("a", "b"):
        amp = data.draw(amplitudes)
        src_vals[name] = (amp, data.draw(st.sampled_from(SPANS)), (amp.numerator, amp.denominator))
    for key in (101, 102):   # `with amplitude` sources: a value this week, or None (it reported)
        amp = data.draw(amplitudes)
        src_vals[key] = data.draw(st.sampled_from([None, (amp, SPANS[4], (amp.numerator, amp.denominator))]))
    rows = []
    for _ in range(n):
        src = data.draw(st.sampled_from(["a", "b", 101, 102]))
        sc = data.draw(st.sampled_from(["a", "b", None]))
        # measured with this week's values (then taken as it is) or another week's
        same = data.draw(st.booleans()) and src_vals[src] is not None
        amp = src_vals[src][0] if same else data.draw(amplitudes)
        span = src_vals[src][1] if same else data.draw(st.sampled_from(SPANS))
        shape = chans[sc].shape if (sc is not None and data.draw(st.booleans())) else data.draw(st.sampled_from(SHAPES))
        use = _use(src if isinstance(src, str) else "a", amp, shape, span)
        rows.append((use, use.__dict__, src, sc))
    rows_t = tuple(rows)
    ref: list = []
    ref_nd: list = []
    lowering.replay_uses(rows_t, chans, src_vals, ref, ref_nd)
    out: list = []
    out_nd: list = []
    twin.replay_uses(rows_t, chans, src_vals, out, out_nd)
    assert out == ref and out_nd == ref_nd
    assert [u.spans for u in out] == [u.spans for u in ref]
    assert [list(u.spans) for u in out] == [list(u.spans) for u in ref]
    assert [a is b for a, b in zip(out, ref)] == [a is r[0] for a, r in zip(ref, rows)]
    for use, (old, _d, src, sc), nd in zip(out, rows, out_nd):
        sv = src_vals[src]
        assert use.amplitude_ua == (old.amplitude_ua if sv is None else sv[0])
        assert nd == (use.amplitude_ua.numerator, use.amplitude_ua.denominator)
        assert use.shape is (chans[sc].shape if sc is not None else old.shape)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(0, 6), shift=st.integers(-10**6, 10**6))
def test_move_segments_equals_the_reference(data, n, shift):
    segs = tuple(lowering.segment(data.draw(st.sampled_from(["block", "pause"])), data.draw(st.text(max_size=5)),
                                  start, start + data.draw(st.integers(0, 10**6)), block=(data.draw(st.integers(0, 9)),))
                 for start in data.draw(st.lists(st.integers(0, 10**8), min_size=n, max_size=n)))
    ref: list = []
    lowering.move_segments(segs, shift, ref)
    out: list = []
    twin.move_segments(segs, shift, out)
    assert out == ref and [s.__dict__ for s in out] == [s.__dict__ for s in ref]
    assert [(s.start_us, s.end_us) for s in out] == [(s.start_us + shift, s.end_us + shift) for s in segs]
    assert all(a.extra is b.extra and a.label is b.label for a, b in zip(out, segs))


frequencies = st.one_of(st.fractions(min_value=Fraction(1, 10), max_value=10_000, max_denominator=30),
                        st.integers(1, 10_000), st.sampled_from([33.3, 50.0, 0.5]))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(0, 8), start=st.integers(0, 10**9), known=st.booleans())
def test_leaf_trains_equals_the_reference(data, n, start, known):
    from stimscript.compiler.lowering import Placement, Timing

    uses = data.draw(st.lists(st.one_of(amplitudes, st.integers(0, 120_000)), min_size=1, max_size=5))
    placements = []
    for _ in range(n):
        timing = Timing(*data.draw(st.tuples(*[st.integers(0, 10**7)] * 4)))
        placements.append(Placement(data.draw(st.integers(1, 255)), data.draw(st.integers(0, 10**7)),
                                    data.draw(st.integers(0, 1000)), timing, data.draw(frequencies),
                                    data.draw(st.integers(0, 3)), data.draw(st.integers(0, len(uses) - 1))))
    placements_t = tuple(placements)
    if not known:
        lowering._PERIODS.clear()
    ref = lowering.leaf_trains(placements_t, start, uses, lowering._PERIODS, lowering._period)
    if not known:
        lowering._PERIODS.clear()
    out = twin.leaf_trains(placements_t, start, uses, lowering._PERIODS, lowering._period)
    assert out == ref and type(out) is tuple
    assert [tr.__dict__ for tr in out] == [tr.__dict__ for tr in ref]   # every field, the same order
    for tr, p in zip(out, placements_t):
        period = Fraction(10**6) / Fraction(p.frequency_hz)
        amp = Fraction(uses[p.use])
        assert (tr.start_us, tr.period_num, tr.period_den, tr.amp_num, tr.amp_den) == \
            (start + p.after_us, period.numerator, period.denominator, amp.numerator, amp.denominator)


def _weeks(text: str):
    protocol = parse(text, "twin.stim")
    an = Analysis(protocol, protocol.span.source)
    results, diags = analyse(an, LOOPBACK_PROFILE)
    return [(w, r.resolved.uses, [u.spans for u in r.resolved.uses], r.resolved.trains, r.resolved.train_uses,
             r.resolved.segments) if r.resolved else (w, None) for w, r in sorted(results.items())], \
        [(d.code, d.severity, d.message, _sp(d.span), d.hint) for d in diags]


def _sp(span):
    return None if span is None else (span.line, span.column, span.end_line, span.end_column)


def _with_reference(fn):
    names = ("place_trains", "replay_uses", "leaf_trains", "leaf_lines", "move_segments")
    saved = [getattr(lowering, "_" + n) for n in names]
    for n in names:
        setattr(lowering, "_" + n, getattr(lowering, n))
    try:
        return fn()
    finally:
        for n, f in zip(names, saved):
            setattr(lowering, "_" + n, f)


LINES = """stimscript 1
protocol "lines" {{
    plan 1 sessions per week, 3 weeks
}}
param a = 20 mA in 1 mA .. 90 mA
param len = {length} in 0 s .. 60 s
electrode p 5 cm x 5 cm
electrode q 5 cm x 5 cm
channel one 1 {{
    electrodes p -> q
    pulse biphasic 300 us
    frequency 35 Hz
    amplitude a
}}
channel two 2 {{
    electrodes q -> p
    pulse biphasic 200 us
    frequency 50 Hz
    amplitude 30 mA
}}
cycle c {{
    ramp up {up}
    hold {hold}
    rest {rest}
}}
progression {{
    every week {{
        a += 1 mA
        c.hold += {grow}
    }}
}}
session {{
{blocks}
}}
"""
durations = st.sampled_from(["0 s", "1 s", "500 ms", "2 s", "3 s", "7 s", "len"])
withs = st.sampled_from(["", " with amplitude 80% a", " with frequency 40 Hz", " with frequency -5 Hz",
                         " with pulse biphasic 100 us", " with amplitude 50% a, frequency 20 Hz",
                         " with amplitude 10 Hz"])


@st.composite
def line_protocols(draw):
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        head = draw(st.sampled_from(["repeat 2", "repeat 1", "for 10 s", "for 3 s", "for len"]))
        lines = []
        for chans in draw(st.permutations(["one", "two", "one, two"]))[:draw(st.integers(1, 2))]:
            cycle = draw(st.sampled_from(["c", "continuous", "missing"]))
            after = draw(st.sampled_from(["", " after 1 s", " after 10 s", " after 500 ms", " after len"]))
            lines.append(f"        {chans}: {cycle}{draw(withs)}{after}")
            if "one, two" in chans or len(lines) == 2:
                break
        blocks.append("    " + head + " {\n" + "\n".join(lines) + "\n    }")
    return LINES.format(length=draw(st.sampled_from(["4 s", "8 s", "30 s"])), up=draw(durations).replace("len", "0 s"),
                        hold=draw(durations).replace("len", "1 s"), rest=draw(durations).replace("len", "0 s"),
                        grow=draw(st.sampled_from(["0 s", "1 s"])), blocks="\n".join(blocks))


@pytest.mark.skipif(not lowering.USING_EXTENSION, reason="the checker runs the reference (STIMSCRIPT_NO_EXTENSIONS=1)")
@settings(max_examples=150, deadline=None)
@given(text=line_protocols())
def test_the_lines_of_a_block_are_walked_alike_with_either_twin(text):
    assert lowering._leaf_lines is twin.leaf_lines
    try:
        parse(text, "twin.stim")
    except Exception:   # pragma: no cover - the template parses
        return
    assert _weeks(text) == _with_reference(lambda: _weeks(text))


@pytest.mark.skipif(not lowering.USING_EXTENSION, reason="the checker runs the reference (STIMSCRIPT_NO_EXTENSIONS=1)")
def test_the_checker_resolves_alike_with_either_twin():
    import importlib.util

    assert lowering._place_trains is twin.place_trains and lowering._replay_uses is twin.replay_uses
    assert lowering._leaf_trains is twin.leaf_trains and lowering._leaf_lines is twin.leaf_lines
    assert lowering._move_segments is twin.move_segments
    spec = importlib.util.spec_from_file_location("bench_check", os.path.join(ROOT, "benchmarks", "bench_check.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    texts = [bench.make_protocol(500, 12), bench.make_protocol(1500, 12)]
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.stim"))) + sorted(
            glob.glob(os.path.join(ROOT, "tests", "corpus", "*", "*.stim"))):
        texts.append(open(path, encoding="utf-8").read())
    for text in texts:
        try:
            parse(text, "twin.stim")
        except Exception:
            continue
        assert _weeks(text) == _with_reference(lambda: _weeks(text))
