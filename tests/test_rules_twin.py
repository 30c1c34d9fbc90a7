"""The compiled per-train loops of the safety rules (ext/_rules.pyx) equal their pure-Python references
(compiler/delivered.py ``session_facts`` with the memo on, ``_facts`` per train, the scan of ``channel_spacing``;
compiler/overlap.py ``overlap_scan``).

* the same TrainFacts, field by field and type by type (the window bound as the very same float), and the same
  entries left in the shared timing memo, for trains of any numbers: ordinary ones, ones beyond the twin's
  64-bit bounds (which it hands to the reference), negative or zero amplitudes, zero and huge cycles;
* the same facts for every train of every week of the examples, the corpus and the benchmark protocol, and the
  same diagnostics from ``check_safety`` with the twin and with the reference.

Skipped when the extension is not built (STIMSCRIPT_NO_EXTENSIONS=1 runs the reference everywhere).
"""
from __future__ import annotations

import os
from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.compiler import delivered as D
from stimscript.compiler import overlap as O
from stimscript.compiler import safety
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo
from tests.protocols import protocol_files, bench_protocol
from tests.strategies import channel_trains as channel

try:
    from stimscript.ext import _rules as twin
except ImportError:   # not built
    twin = None

pytestmark = [pytest.mark.skipif(twin is None, reason="the compiled rules loop is not built"),
              pytest.mark.usefixtures("fresh_safety_memos")]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = (PulseShape(((200, 1.0), (200, -1.0)), "biphasic"),
          PulseShape(((250, 1.0), (50, 0.0), (1000, -0.25)), "asymmetric"),
          PulseShape(((7, 0.3), (3, -0.7)), "custom"))


def _fields(tf: D.TrainFacts) -> tuple:
    vals = (tf.index, tf.train, tf.k_lo, tf.k_hi, tf.first_off, tf.last_off, tf.peak_ua, tf.first_ua, tf.weight,
            tf.in_cycle_spacing, tf.cross_cycle_spacing, tf.wbound)
    return tuple((type(v), v) for v in vals)


def _with(impl, fn, *args):
    """``fn(*args)`` with the rules' compiled loops (delivered.py selects them for delivered.py, delivered_rules.py
    and overlap.py) set to ``impl`` (the twin, or None: the reference)."""
    saved = D._twin
    D._twin = impl
    try:
        return fn(*args)
    finally:
        D._twin = saved


def _reference(trains, shapes):
    return _with(None, D.session_facts, trains, shapes)


def _twin_facts(trains, shapes):
    return _with(twin, D.session_facts, trains, shapes)


def _compare(trains, shapes=SHAPES):
    D.clear_memo()
    ref = _reference(trains, shapes)
    ref_memo = dict(D._TIMING_MEMO)
    D.clear_memo()
    got = _twin_facts(trains, shapes)
    assert [_fields(tf) for tf in got] == [_fields(tf) for tf in ref]
    assert D._TIMING_MEMO == ref_memo
    # warmed by the other path's entries: the same again
    again = _twin_facts(trains, shapes)
    assert [_fields(tf) for tf in again] == [_fields(tf) for tf in ref]


big = st.one_of(st.integers(-3, 3), st.integers(0, 2**45), st.sampled_from([2**22, 2**22 + 1, 2**39 - 1, 2**39,
                                                                             2**40, 2**62, 2**63, 2**64 + 7]))


@st.composite
def trains(draw, extreme: bool):
    p = draw(st.sampled_from([F(10**6, 50), F(10**6, 7), F(10**6, 333), F(10**6, 1000), F(10**6, 3), F(1000, 3),
                              F(10**6, 35), F(7, 1), F(10**6, 2**21 + 1)]))
    on = draw(st.sampled_from([1, 400, 20_000, 333_333, 1_000_000, 2_500_000, 18 * 10**9]))
    up = draw(st.sampled_from([0, 1, 999, on // 3, on // 2]))
    down = draw(st.sampled_from([0, 1, (on - up) // 2, on - up]))
    rest = draw(st.sampled_from([0, 1, 300, 20_000, 700_000, 3_000_000]))
    amp = draw(st.sampled_from([F(0), F(1, 3), F(1, 2), F(2, 3), F(1), F(60_000), F(-45_000), F(70, 3) * 1000,
                                F(12_345, 7), F(2**21 + 3, 1)]))
    vals = dict(channel=draw(st.integers(1, 3)), start_us=draw(st.integers(0, 10**10)),
                cycles=draw(st.integers(-1, 6)), cycle_us=on + rest, on_us=on, ramp_up_us=up, ramp_down_us=down,
                period_num=p.numerator, period_den=p.denominator, amp_num=amp.numerator, amp_den=amp.denominator,
                shape=draw(st.integers(-1, 3)))
    if extreme:
        for name in draw(st.lists(st.sampled_from(sorted(vals)), max_size=3)):
            vals[name] = draw(big)
    return Train(**vals)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trains(False), max_size=12))
def test_the_twin_gives_the_reference_facts(trs):
    _compare(trs)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trains(True), max_size=8))
def test_the_twin_gives_the_reference_facts_for_any_numbers(trs):
    try:
        _reference(trs, SHAPES)
    except (ValueError, ZeroDivisionError, OverflowError, MemoryError) as exc:   # the reference refuses: so does the twin
        D.clear_memo()
        with pytest.raises(type(exc)):
            _twin_facts(trs, SHAPES)
        return
    _compare(trs)


def test_the_memo_is_cleared_at_its_size_as_the_reference_clears_it(monkeypatch):
    monkeypatch.setattr(D, "_MEMO_MAX", 3)
    trs = [Train(1, 0, 2, 50_000 + k, 40_000 + k, 0, 0, 20_000, 1, 5_000, 1, 0) for k in range(7)]
    _compare(trs)


def _every_week(proto):
    for week in sorted(proto._weeks):
        resolved = proto._weeks[week].resolved
        if resolved is not None:
            yield resolved


@pytest.mark.parametrize("path", protocol_files() + ["bench"], ids=os.path.basename)
def test_every_week_of_the_examples_gives_the_reference_facts_and_diagnostics(path):
    proto = stimscript.loads(bench_protocol(), "bench.stim") if path == "bench" else stimscript.load(path)
    for resolved in _every_week(proto):
        _compare(list(resolved.trains), resolved.shapes)
        safety.clear_caches()
        got = _with(twin, safety.check_safety, resolved)
        safety.clear_caches()
        ref = _with(None, safety.check_safety, resolved)
        assert [(d.code, d.message, d.span, d.hint) for d in got] == [(d.code, d.message, d.span, d.hint) for d in ref]


# --- channel_spacing's scan ------------------------------------------------------------------------------------


def _spacing(impl, facts, budget, items):
    try:
        return _with(impl, D.channel_spacing, facts, budget, items)
    except D.BudgetExceeded as exc:
        return ("budget", exc.needed)
    except (OverflowError, MemoryError, ValueError) as exc:   # numbers no expander lays out: refused alike
        return ("refused", type(exc))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(channel(), channel(extreme=True)), st.sampled_from([D.EXPANSION_BUDGET, 50, 0]),
       st.booleans())
def test_the_spacing_scan_gives_the_reference_spacing(trs, budget, shared_order):
    facts = [tf for tf in _reference(trs, SHAPES[:2]) if tf.k_hi > tf.k_lo]
    items = D.onset_order(facts) if shared_order else None
    ref = _spacing(None, facts, budget, items)
    assert _spacing(twin, facts, budget, items) == ref
    # the scan with its own order and with the channel's shared one agree
    assert _spacing(twin, facts, budget, None if shared_order else D.onset_order(facts)) == ref


def test_facts_built_without_the_dataclass_init_equal_the_dataclass_ones():
    tr = Train(1, 0, 1, 1, 1, 0, 0, 20_000, 1, 1, 1, 0)
    args = (3, tr, 0, 5, 0, 100, 5000, 3000, F(7, 3), 20_000, None, 1.5)
    made = twin.make_facts(D.TrainFacts, *args)
    plain = D.TrainFacts(*args)
    assert type(made) is D.TrainFacts and _fields(made) == _fields(plain) and made.ekey is None
    made.ekey = 4                    # an ordinary object: its slots are writable, its fields all set
    assert D.emitted_id(made) == 4

    class Other:                     # any other class: built by calling it
        def __init__(self, *a):
            self.args = a

    assert twin.make_facts(Other, *args).args == args


# --- overlap_scan ------------------------------------------------------------------------------------------------
DURS = [s.duration_us for s in SHAPES] + [0, 2**40, 2**64]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(trains(False), max_size=12), st.lists(trains(True), max_size=8), channel(),
                 channel(extreme=True)), st.booleans(), st.sampled_from([DURS[:3], DURS]))
def test_the_overlap_scan_gives_the_reference_suspects_and_chains(trs, shared, durs):
    """The same trains that may overlap alone and the same chains of trains that may overlap each other, in the
    same order; None (the reference runs) only for a number beyond the twin's bounds. (find_overlaps does the
    rest alike with either: it is compared on every week of the examples above.)"""
    ref = O.overlap_scan(trs, durs, shared)
    got = twin.overlap_scan(trs, durs, shared)
    if got is None:
        nums = [v for tr in trs for v in (tr.start_us, tr.cycle_us, tr.cycles, tr.on_us, tr.period_num,
                                          tr.period_den)] + [d for d in durs]
        assert any(abs(v) >= 2**22 for v in nums)
    else:
        assert got == ref


def test_the_overlap_scan_chains_lines_that_meet():
    """Two lines on one channel that overlap, one far away, and a train that overlaps itself: the first two are a
    chain, the third is alone, the fourth a suspect; on a shared source every channel is one group."""
    def line(ch, start, on=400_000, rest=600_000, cycles=3, p=F(20_000)):
        return Train(ch, start, cycles, on + rest, on, 0, 0, p.numerator, p.denominator, 30_000, 1, 0)

    trs = [line(1, 0), line(1, 500_000), line(1, 30_000_000), line(2, 0, p=F(300))]
    for impl in (twin.overlap_scan, O.overlap_scan):
        suspects, chained = impl(trs, [400], False)
        assert suspects == [(3, trs[3], 400)]
        assert chained == [([(0, trs[0], 400), (1, trs[1], 400), (2, trs[2], 400)],
                            [[(0, trs[0], 400), (1, trs[1], 400)]])]
        suspects, chained = impl(trs, [400], True)
        assert [c for _, chains in chained for c in chains] == [[(0, trs[0], 400), (1, trs[1], 400),
                                                                 (3, trs[3], 400)]]


# --- channel_onsets ----------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 3), st.one_of(channel(), channel(extreme=True))), min_size=1, max_size=3),
       st.sampled_from([0, 10_000, 29_999, 40_000, 10**30, F(10_001, 3)]))
def test_channel_onsets_give_the_reference_starts_of_output(channels, threshold):
    """Per channel: the same trains that emit, the same onset order, the same trains that start output above the
    threshold (a train following another within a second continues it), the same sum of window bounds; None (the
    reference runs) for a threshold or numbers beyond the C bounds."""
    from stimscript.compiler import delivered_rules as R

    trs = [Train(ch, tr.start_us, tr.cycles, tr.cycle_us, tr.on_us, tr.ramp_up_us, tr.ramp_down_us, tr.period_num,
                 tr.period_den, tr.amp_num, tr.amp_den, tr.shape) for ch, line in channels for tr in line]
    facts = _reference(trs, SHAPES[:2])
    ref = _with(None, R.channel_onsets, trs, SHAPES[:2], threshold, facts)
    got = twin.channel_onsets(facts, threshold)
    if got is not None:
        assert got == ref
        assert [type(x) for row in got for x in row[4:]] == [float] * len(got)
    else:
        assert type(threshold) is not int or threshold >= 2**63 or any(
            max(abs(tr.start_us), abs(tr.cycle_us)) >= 2**39 for tr in trs)
    assert _with(twin, R.channel_onsets, trs, SHAPES[:2], threshold, facts) == ref


# --- the per-use loop of check_safety ----------------------------------------------------------------------------
_USE_SHAPES = SHAPES[:2]
_USE_ELECTRODES = [(ElectrodeInfo("a", F(4), None), ElectrodeInfo("b", F(25), None)),
                   (ElectrodeInfo("a", F(4), None), ElectrodeInfo("b", F(25), None))]   # equal values, two objects
_USE_FREQS = [F(50), 50, F(50), F(1000, 3)]
_USE_AMPS = [F(20_000), 20_000, F(20_000), F(9_000), F(10**6, 7), -5]


class _Verdict:
    """A verdict whose clean() answers by a threshold and records what it was asked."""

    def __init__(self, limit, log):
        self.limit, self.log = limit, log

    def clean(self, a):
        self.log.append(("clean", id(self), a))
        return a < self.limit


@st.composite
def _use_cases(draw):
    """Uses sharing (or not) shape, electrode, frequency and amplitude objects, numbers of two types, ramps and
    on-phases of both kinds; verdicts kept for some of their identity groups (some for other objects, some None)."""
    uses = []
    for _ in range(draw(st.integers(0, 12))):
        uses.append(ChannelUse(draw(st.sampled_from(["q", "h"])), draw(st.sampled_from([1, 2, 1.0])),
                               draw(st.sampled_from(_USE_AMPS)), draw(st.sampled_from(_USE_FREQS)),
                               draw(st.sampled_from(_USE_SHAPES)), draw(st.sampled_from(_USE_ELECTRODES)),
                               ramp_up_us=draw(st.sampled_from([0, 0, 1000])), on_us=draw(st.sampled_from([0, 5000]))))
    ck = draw(st.sampled_from([None, 7]))
    kept = []
    for u in uses:
        if draw(st.booleans()):
            no_ramp = u.ramp_up_us == 0 and u.on_us > 0
            other = draw(st.sampled_from(["same", "other shape", "other electrodes", "other frequency"]))
            held = (SHAPES[2] if other == "other shape" else u.shape,
                    _USE_ELECTRODES[0] if other == "other electrodes" and u.electrodes is not _USE_ELECTRODES[0]
                    else u.electrodes, F(7) if other == "other frequency" else u.frequency_hz)
            kept.append(((7, id(u.shape), id(u.electrodes), id(u.frequency_hz), u.channel, type(u.number), u.number,
                          no_ramp), held, draw(st.sampled_from([None, 0, 15_000, 10**9]))))
    return uses, ck, kept


def _run_uses(impl, uses, ck, kept):
    log: list = []
    groups = {key: held + (("free", key), None if limit is None else _Verdict(limit, log))
              for key, held, limit in kept}

    def memo_use(ctx, use, no_ramp):
        log.append(("memo", ctx, id(use), no_ramp))
        k = uses.index(use)
        return ((("S002", k),), False) if use.amplitude_ua == -5 else ((), k % 3 == 0)

    local: dict = {}
    fn = impl.use_results if impl is not None else safety.use_results
    out = fn(uses, local, groups, ck, "ctx", memo_use, safety._NO_FINDINGS)
    # (the clean log by verdict object: the same verdicts, asked about the same amplitudes in the same order)
    order = {v: n for n, v in enumerate(dict.fromkeys(e[1] for e in log if e[0] == "clean"))}
    log = [(e[0], order[e[1]], e[2]) if e[0] == "clean" else e for e in log]
    return out, list(local.items()), log, [r is safety._NO_FINDINGS for _, r in local.items()]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_use_cases())
def test_the_per_use_loop_gives_the_reference_results_lookups_and_calls(case):
    uses, ck, kept = case
    assert _run_uses(twin, uses, ck, kept) == _run_uses(None, uses, ck, kept)


def test_the_per_use_loop_refuses_unhashable_values_as_the_reference_does():
    use = ChannelUse("q", [1], F(1), F(50), SHAPES[0], _USE_ELECTRODES[0], on_us=5000)
    for impl in (twin, None):
        with pytest.raises(TypeError):
            _run_uses(impl, [use], 7, [])
