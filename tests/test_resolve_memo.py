"""The checker's memos resolve every week exactly as the plain path does, and a week measures again only
what changed in it.

``compiler/checker.py`` keeps, per top-level session block, its measurement and its layout, moved to where
the block starts in a later week (keyed on the params it names, its cycles' timings and its channels'
values but their amplitudes and pulses; a `with amplitude` is taken from the week), and per electrode set, cycle and channel the week's values
(keyed on the params and progression assignments they read). The oracle is the same checker with the
memos off (``checker.set_cache_enabled(False)``): every use with its spans, train, train's use, segment,
shape, channel and diagnostic (code, message, position, hint) of every week must be the same.
"""
from __future__ import annotations

import importlib.util
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.compiler import checker
from stimscript.compiler.checker import Analysis, analyse
from stimscript.dsl import ast, parse
from stimscript.profile import LOOPBACK_PROFILE
from stimscript.spans import Source
from tests.protocols import bench_protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sp(s):
    return None if s is None else (s.line, s.column, s.end_line, s.end_column)


def _everything(text: str, memo: bool):
    before = checker.set_cache_enabled(memo)
    try:
        try:
            protocol = parse(text, "memo.stim")
        except Exception:   # a syntax error: nothing to resolve
            return None
        an = Analysis(protocol, protocol.span.source if protocol.span else Source("memo.stim", text))
        results, diags = analyse(an, LOOPBACK_PROFILE)
    finally:
        checker.set_cache_enabled(before)
    weeks = []
    for week, res in sorted(results.items()):
        r = res.resolved
        wd = [(d.code, d.message, _sp(d.span), d.hint) for d in res.diagnostics]
        if r is None:
            weeks.append((week, None, wd))
            continue
        uses = [(u, {k: _sp(v) for k, v in u.spans.items()}) for u in r.uses]
        weeks.append((week, r.session, r.duration_us, uses, r.trains, r.train_uses, r.segments,
                      [(s.extra, s.kind) for s in r.segments], r.shapes, r.channels, r.params, wd))
    return weeks, [(d.code, d.severity, d.message, _sp(d.span), d.hint,
                    [(x.message, _sp(x.span)) for x in d.related]) for d in diags]


# --- a family of protocols where every input of a block changes in some weeks -----------------------------
TEMPLATE = """stimscript 1
protocol "memo" {{
    plan 1 sessions per week, {weeks} weeks
}}
param a = {a} mA in 1 mA .. 90 mA
param b = {b} mA in 1 mA .. 90 mA
param gap = {gap} s in 0 s .. 10 s
param w = {w} us in 100 us .. 600 us
param span = {span} s in 1 s .. 60 s
electrode p 5 cm x 5 cm
electrode q 5 cm x 5 cm
electrode r 5 cm x 5 cm
electrode s 5 cm x 5 cm
channel one 1 {{
    electrodes p -> q
    pulse biphasic {pulse_one}
    frequency 35 Hz
    amplitude a
}}
channel two 2 {{
    electrodes r -> s
    pulse biphasic 200 us
    frequency {f2} Hz
    amplitude b
}}
cycle c {{ ramp up 1 s; hold {hold} s; ramp down 1 s; rest 2 s }}
cycle d {{ ramp up {dup} s; hold 1 s; rest {drest} s }}
session {{
    repeat {n} {{ one: c with amplitude {ov} }}
    repeat 2 {{
        repeat {n} {{ one, two: d }}
        {pause}
    }}
    repeat 1 {{ two: c with pulse biphasic {pulse_two} }}
    for span {{ one: continuous after gap; two: d }}
    repeat {n} {{ one: d with frequency {f3} Hz, pulse biphasic 250 us; two: c after {after} }}
}}
progression {{
    every week {{
        a += {da} mA up to 90 mA
        b -= {db} mA down to 1 mA
        span += {dspan} s up to 60 s
    }}
    week 2..3 {{ c.hold = {hold2} s }}
    week 3 {{ d.rest = {drest3} s }}
    week 4 {{ one.amplitude = {amp4} mA }}
    week 2 {{ two.frequency = {f2b} Hz }}
    week 5 {{ w = {w5} us }}
    week 3..4 {{ gap = {gap3} s }}
}}
"""


@settings(max_examples=60, deadline=None)
@given(weeks=st.integers(1, 6), a=st.integers(5, 40), b=st.integers(5, 40), gap=st.integers(0, 3),
       w=st.sampled_from([200, 250, 300]), span=st.integers(5, 20), hold=st.integers(0, 3),
       dup=st.integers(0, 2), drest=st.integers(0, 3), n=st.integers(1, 3),
       ov=st.sampled_from(["20 mA", "50% a", "80% b", "a", "a - 30 mA", "b * 2"]),
       pause=st.sampled_from(["", "pause gap", "pause 1 s"]),
       pulse_one=st.sampled_from(["w", "300 us", "200 us"]), pulse_two=st.sampled_from(["w", "200 us", "250 us"]),
       f2=st.sampled_from([20, 35, 50]), f3=st.sampled_from([20, 35, 40]),
       after=st.sampled_from(["0 s", "gap", "500 ms"]), da=st.integers(0, 4), db=st.integers(0, 4),
       dspan=st.integers(0, 5), hold2=st.integers(0, 3), drest3=st.integers(0, 3), amp4=st.integers(5, 30),
       f2b=st.sampled_from([20, 35, 45]), w5=st.sampled_from([250, 300, 500]), gap3=st.integers(0, 3))
def test_memoised_weeks_equal_the_plain_path(**values):
    """Params in `with amplitude` (some weeks negative: E402 there), `after`, `for` lengths and pauses; cycle,
    channel and param assignments in week ranges; a pulse override that equals a channel's shape or a later
    line's fixed `with pulse` in some weeks (so the later block's shape index moves and it is measured
    again); amplitudes that meet and part."""
    text = TEMPLATE.format(**values)
    assert _everything(text, True) == _everything(text, False)


def _files():
    import glob

    return sorted(glob.glob(os.path.join(ROOT, "examples", "*.stim"))) + sorted(
        glob.glob(os.path.join(ROOT, "tests", "corpus", "*", "*.stim")))


def test_every_example_and_corpus_file_resolves_alike():
    for path in _files():
        text = open(path, encoding="utf-8", errors="replace").read()
        assert _everything(text, True) == _everything(text, False), path


def test_the_benchmark_protocols_resolve_alike():
    for lines in (500, 1500):
        text = bench_protocol(lines)
        assert _everything(text, True) == _everything(text, False)


# --- what a week measures again ---------------------------------------------------------------------------
def _measured_per_week(text: str) -> tuple[list[int], Analysis]:
    protocol = parse(text, "bench.stim")
    an = Analysis(protocol, protocol.span.source)
    counts: list[int] = []
    original = Analysis._measure

    def counting(self, block, ctx, path):
        if len(path) == 1:
            counts[-1] += 1
        return original(self, block, ctx, path)

    Analysis._measure = counting
    try:
        for week, state, _sink in an.week_states(an.plan.weeks):
            counts.append(0)
            an.resolve(state, week, week, [])
    finally:
        Analysis._measure = original
    return counts, an


def _names_cycle(block, cycle: str) -> bool:
    stack = [block]
    while stack:
        b = stack.pop()
        if isinstance(b, ast.Pause):
            continue
        stack.extend(b.blocks)
        if any(line.cycle.name == cycle for line in b.lines):
            return True
    return False


def test_a_week_measures_again_only_the_blocks_whose_inputs_changed():
    """benchmarks/bench_parse.py's protocol: `c1.hold` changes in weeks 2-5 only (1 s..5 s, then the same
    values again), the intensity of one channel every week. Week 1 measures every block; weeks 2-5 the
    blocks with a line on `c1`; weeks 6-12 none (the holds come back, and amplitudes are taken per week)."""
    spec = importlib.util.spec_from_file_location("bench_parse", os.path.join(ROOT, "benchmarks", "bench_parse.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    counts, an = _measured_per_week(mod.make_protocol(500))
    blocks = an.session.blocks
    on_c1 = sum(1 for b in blocks if _names_cycle(b, "c1"))
    assert 0 < on_c1 < len(blocks)
    assert counts == [len(blocks)] + [on_c1] * 4 + [0] * 7


def test_without_the_memo_every_week_measures_every_block():
    spec = importlib.util.spec_from_file_location("bench_parse", os.path.join(ROOT, "benchmarks", "bench_parse.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    before = checker.set_cache_enabled(False)
    try:
        counts, an = _measured_per_week(mod.make_protocol(500))
    finally:
        checker.set_cache_enabled(before)
    assert counts == [len(an.session.blocks)] * 12


def test_a_block_whose_shape_index_moves_is_measured_again():
    """An earlier line's `with pulse biphasic w` is a new shape in weeks 1-4 (w = 300 us) and equals the later
    line's fixed `with pulse biphasic 250 us` in week 5: that later block reads nothing that changed, but its
    shape's index does (its placements hold indices), so it is measured again and every week equals the plain
    path."""
    values = dict(weeks=6, a=20, b=20, gap=1, w=300, span=10, hold=1, dup=1, drest=1, n=2, ov="a", pause="",
                  pulse_one="200 us", pulse_two="w", f2=35, f3=20, after="gap", da=1, db=1, dspan=1, hold2=2,
                  drest3=2, amp4=10, f2b=20, w5=250, gap3=2)
    text = TEMPLATE.format(**values)
    refused = []
    original = checker._BlockMemo.replay

    def replay(self, *args):
        done = original(self, *args)
        if not done:
            refused.append(1)
        return done

    checker._BlockMemo.replay = replay
    try:
        memo = _everything(text, True)
    finally:
        checker._BlockMemo.replay = original
    assert refused
    assert memo == _everything(text, False)


# --- weeks that differ from the week before only in amplitudes: replayed as a whole ------------------------
AMPLITUDES_ONLY = """stimscript 1
protocol "memo" {{
    plan 2 sessions per week, {weeks} weeks
}}
param a = {a} mA in 1 mA .. 90 mA
param b = {b} mA in 1 mA .. 90 mA
param w = 300 us in 100 us .. 600 us
electrode p 5 cm x 5 cm
electrode q 5 cm x 5 cm
electrode r 5 cm x 5 cm
electrode s 5 cm x 5 cm
channel one 1 {{
    electrodes p -> q
    pulse biphasic w
    frequency 35 Hz
    amplitude a
}}
channel two 2 {{
    electrodes r -> s
    pulse biphasic 200 us
    frequency 40 Hz
    amplitude {amp_two}
}}
cycle c {{ ramp up 1 s; hold 2 s; ramp down 1 s; rest 2 s }}
session {{
    repeat {n} {{ one: c with amplitude {ov}; two: c after 1 s }}
    repeat 2 {{
        repeat {n} {{ one, two: c }}
        pause 1 s
    }}
    repeat 1 {{ two: c with pulse biphasic {pulse_two}; one: c with amplitude {ov2} }}
    for 20 s {{ one: continuous after 2 s; two: c }}
}}
progression {{
    every week {{
        a += {da} mA up to 90 mA
        b -= {db} mA down to 1 mA
    }}
}}
"""


def _alone_per_week(text: str) -> list[list[int]]:
    """Per week from week 2, the top-level blocks not taken from the week before in a run (``_replay_run``);
    and every week must equal the plain path."""
    weeks: list[list[int]] = []
    taken: list[set] = []
    layout, replay_run = Analysis._session_layout, Analysis._replay_run

    def counting_layout(self, *args):
        taken.append(set())
        result = layout(self, *args)
        weeks.append(sorted(set(range(len(self.session.blocks))) - taken[-1]))
        return result

    def counting_run(self, last, a, b, *args):
        done = replay_run(self, last, a, b, *args)
        if done:
            taken[-1].update(range(a, b))
        return done

    Analysis._session_layout, Analysis._replay_run = counting_layout, counting_run
    try:
        memo = _everything(text, True)
    finally:
        Analysis._session_layout, Analysis._replay_run = layout, replay_run
    assert memo == _everything(text, False)
    return weeks[1:]


@settings(max_examples=40, deadline=None)
@given(weeks=st.integers(2, 6), a=st.integers(5, 40), b=st.integers(5, 40), n=st.integers(1, 3),
       amp_two=st.sampled_from(["b", "a", "50% b"]),
       ov=st.sampled_from(["20 mA", "50% a", "b", "a - 30 mA", "b * 2"]),
       ov2=st.sampled_from(["a", "b - 12 mA", "10 mA"]), pulse_two=st.sampled_from(["w", "200 us", "250 us"]),
       da=st.integers(0, 3), db=st.integers(0, 3))
def test_weeks_that_differ_only_in_amplitudes_equal_the_plain_path(**values):
    """Every block reads what it read the week before but the amplitudes, which meet and part (`a` and `b` in
    one block; `with amplitude` values equal to a channel's), go negative (E402 in that week only) or stay."""
    _alone_per_week(AMPLITUDES_ONLY.format(**values))


def test_a_week_of_new_amplitudes_only_is_replayed_whole():
    """Weeks 2-5 read what the week before read but the amplitudes: each is taken from the week before as a
    whole. When `a` and `b` meet (20 + 2k = 26 - k in week 3) the blocks with lines on both channels (the
    second and the fourth) may merge trains, so they are resolved on their own in that week and in the next
    (whose week before laid them out for another pattern); the other blocks still come from the week before.
    Week 5 is taken whole again. Every week equals the plain path."""
    values = dict(weeks=5, a=10, b=40, n=2, amp_two="b", ov="50% a", ov2="10 mA", pulse_two="250 us", da=2, db=3)
    assert _alone_per_week(AMPLITUDES_ONLY.format(**values)) == [[]] * 4
    values.update(a=20, b=26, da=2, db=1)
    assert _alone_per_week(AMPLITUDES_ONLY.format(**values)) == [[], [1, 3], [1, 3], []]


ELECTRODES_BY_WEEK = """stimscript 1
protocol "pairs" {
    plan 1 sessions per week, 4 weeks
}
param a = 20 mA in 1 mA .. 90 mA
param side = 5 cm in 3 cm .. 9 cm
electrode p side x 5 cm
electrode q 5 cm x 5 cm
electrode r 6 cm x 5 cm
channel one 1 {
    electrodes p -> q
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude a
}
channel two 2 {
    electrodes q -> r
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude a
}
cycle c { ramp up 1 s; hold 2 s; ramp down 1 s; rest 2 s }
session {
    repeat 2 { one, two: c }
}
progression {
    every week { a += 1 mA up to 90 mA }
    week 3..4 { side = 7 cm }
}
"""


def test_a_channel_keeps_its_electrode_pair_while_its_electrodes_are_the_same():
    # the safety rules memoise per electrode tuple: a channel whose electrodes did not change hands the same
    # tuple to every week's uses; when an electrode's value changes, a new tuple with the new values
    protocol = parse(ELECTRODES_BY_WEEK, "pairs.stim")
    an = Analysis(protocol, protocol.span.source)
    results, _ = analyse(an, LOOPBACK_PROFILE)
    pairs = {w: {u.channel: u.electrodes for u in res.resolved.uses} for w, res in results.items()}
    assert pairs[1]["one"] is pairs[2]["one"] and pairs[3]["one"] is pairs[4]["one"]
    assert pairs[2]["one"] is not pairs[3]["one"]
    assert [e.area_cm2 for e in pairs[1]["one"]] == [25, 25] and [e.area_cm2 for e in pairs[3]["one"]] == [35, 25]
    # (the week's electrodes are evaluated anew when a param they read changes: equal values, new objects)
    assert pairs[1]["two"] is pairs[2]["two"] and pairs[3]["two"] is pairs[4]["two"]
    assert pairs[3]["two"] == pairs[1]["two"]
    assert _everything(ELECTRODES_BY_WEEK, True) == _everything(ELECTRODES_BY_WEEK, False)


AMPLITUDE_FORMS = """stimscript 1
protocol "amplitudes" {{
    plan 1 sessions per week, {weeks} weeks
}}
param a = {a} mA in 1 mA .. 90 mA
param b = {b} mA in -20 mA .. 90 mA
param n = 3 in 1 .. 9
electrode p 5 cm x 5 cm
electrode q 5 cm x 5 cm
channel one 1 {{
    electrodes p -> q
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude {one}
}}
channel two 2 {{
    electrodes q -> p
    pulse biphasic 200 us
    frequency 35 Hz
    amplitude {two}
}}
cycle c {{ ramp up 1 s; hold 2 s; ramp down 1 s; rest 2 s }}
session {{
    repeat 2 {{ one, two: c }}
}}
progression {{
    every week {{
        a += {da} mA up to 90 mA
        b -= {db} mA
    }}
    {assign}
}}
"""


@settings(max_examples=60, deadline=None)
@given(weeks=st.integers(1, 4), a=st.integers(1, 40), b=st.integers(-5, 40), da=st.integers(0, 5),
       db=st.integers(0, 9),
       one=st.sampled_from(["a", "b", "50% a", "150% b", "n", "a + 1 mA", "20 mA", "x"]),
       two=st.sampled_from(["a", "b", "0.5% b", "200% a"]),
       assign=st.sampled_from(["", "week 2 { one.amplitude = 12 mA }", "week 2..3 { two.amplitude = 90% a }"]))
def test_an_amplitude_written_as_a_param_or_its_percentage_resolves_as_the_evaluator_gives_it(**values):
    # _channel_values takes a channel amplitude written `PARAM` or `P% PARAM` (and not set by the progression)
    # without the evaluator when it would say nothing (checker._plain_microamps); negative params, counts,
    # unknown names and progression assignments go to the evaluator: every week equals the plain path
    text = AMPLITUDE_FORMS.format(**values)
    assert _everything(text, True) == _everything(text, False)
