"""The delivered-pulse rules' memos and fast paths give exactly what the plain computation gives.

The weeks of a plan repeat their lines with other amplitudes (and often other timings). ``compiler.delivered``
shares the amplitude-free part of a train's facts, and the spacing measured on an interleaved stretch of a
channel's lines keyed on its trains' onsets relative to the stretch's start; ``find_overlaps`` memoises the sweep
of each cluster of meeting trains the same way (relative to the cluster's first start), so a week that moves
whole blocks along the session reuses them. Each test compares the memoised path, warmed by other "weeks", with
the plain one (every memo off: ``safety.set_cache_enabled(False)``) or with the expanders' own pulses (not the
checker's code).
"""
from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stimscript.compiler import delivered as D
from stimscript.compiler import expand_py, safety
from stimscript.compiler import overlap as O
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile
from stimscript.spans import Source, at
from stimscript.units import Quantity

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHARED = DeviceProfile(name="shared", independent_sources=False)
SHAPES = (PulseShape(((200, 1.0), (200, -1.0)), "biphasic"),
          PulseShape(((250, 1.0), (50, 0.0), (1000, -0.25)), "asymmetric"),
          PulseShape(((7_500, 1.0), (7_500, -1.0)), "biphasic"))


pytestmark = pytest.mark.usefixtures("fresh_safety_memos")


def _plain(fn, *args, **kw):
    before = safety.set_cache_enabled(False)
    try:
        return fn(*args, **kw)
    finally:
        safety.set_cache_enabled(before)


@st.composite
def timings(draw):
    """A train's timing (no amplitude): periods with and without a rounding pattern, ramps shorter and longer
    than one period, cycles shorter than one period."""
    p = draw(st.sampled_from([F(10**6, 50), F(10**6, 7), F(10**6, 333), F(10**6, 1000), F(10**6, 3), F(1000, 3)]))
    on = draw(st.sampled_from([1, 400, 20_000, 333_333, 1_000_000, 2_500_000]))
    up = draw(st.sampled_from([0, 1, 999, on // 3, on // 2]))
    down = draw(st.sampled_from([0, 1, (on - up) // 2, on - up]))
    rest = draw(st.sampled_from([0, 1, 300, 20_000, 700_000, 3_000_000]))
    start = draw(st.integers(0, 4)) * draw(st.sampled_from([0, 1, 250, 10_000, 600_000, 1_000_000]))
    return dict(channel=draw(st.integers(1, 2)), start_us=start, cycles=draw(st.integers(0, 5)),
                cycle_us=on + rest, on_us=on, ramp_up_us=up, ramp_down_us=down,
                period_num=p.numerator, period_den=p.denominator, shape=draw(st.integers(0, 2)))


AMPS = st.sampled_from([F(40_000), F(1), F(3, 2), F(1, 3), F(7), F(250), F(-20_000), F(0), F(120_001, 7)])


def _train(t, amp):
    return Train(amp_num=amp.numerator, amp_den=amp.denominator, **t)


def _fields(tf):
    return (tf.index, tf.train, tf.k_lo, tf.k_hi, tf.first_off, tf.last_off, tf.peak_ua, tf.first_ua, tf.weight,
            tf.in_cycle_spacing, tf.cross_cycle_spacing, tf.wbound)


@settings(max_examples=300, **SETTINGS)
@given(st.lists(st.tuples(timings(), st.lists(AMPS, min_size=1, max_size=4)), min_size=1, max_size=4))
def test_train_facts_share_their_timing_part_exactly(cases):
    # every train with every amplitude, in one warm memo: the facts equal the plain computation's
    trs = [_train(t, amp) for t, amps in cases for amp in amps]
    got = [_fields(D.train_facts(3, tr, SHAPES)) for tr in trs]
    assert got == [_fields(_plain(D.train_facts, 3, tr, SHAPES)) for tr in trs]


@settings(max_examples=200, **SETTINGS)
@given(timings(), AMPS, AMPS)
def test_trains_with_one_emitted_key_deliver_pulses_at_the_same_times(t, a1, a2):
    t = dict(t, cycles=min(t["cycles"], 3))
    tr1, tr2 = _train(t, a1), _train(t, a2)
    f1, f2 = D.train_facts(0, tr1, SHAPES), D.train_facts(0, tr2, SHAPES)
    k1, k2 = D.emitted_key(f1), D.emitted_key(f2)
    assert (D.emitted_id(f1) == D.emitted_id(f2)) == (k1 == k2)
    D.clear_memo()
    assert D.emitted_id(D.train_facts(0, tr1, SHAPES)) == D.emitted_id(f1)   # numbers outlive the memos
    end = tr1.start_us + tr1.cycles * tr1.cycle_us + 1
    p1 = expand_py.expand([tr1], 0, end)["t_us"].tolist()
    p2 = expand_py.expand([tr2], 0, end)["t_us"].tolist()
    if k1 == k2:
        assert p1 == p2
    # the key's slot range is exactly what the expander emits in one cycle
    tf = D.train_facts(0, tr1, SHAPES)
    if tr1.cycles >= 1:
        first = [x - tr1.start_us for x in p1 if x < tr1.start_us + tr1.cycle_us]
        ks = range(tf.k_lo, tf.k_hi)
        assert first == [D.round_div(k * tr1.period_num, tr1.period_den) for k in ks]


@settings(max_examples=200, **SETTINGS)
@given(st.lists(st.tuples(timings(), AMPS), min_size=1, max_size=6),
       st.sampled_from([F(10**9), F(10**13), F(10**15), F(10**17)]))
def test_the_cheap_window_bound_implies_the_sorted_one(cases, threshold):
    facts = [D.train_facts(i, _train(dict(t, channel=1), a), SHAPES) for i, (t, a) in enumerate(cases)]
    live = [tf for tf in facts if tf.per_cycle]
    if not live:
        return
    plain = D.window_bound(live)
    # the bound as the pairwise sweep it replaces computes it: events ordered by (time, end before start),
    # trains in their order among equal events, the float sum in that order
    events = []
    for pos, tf in enumerate(live):
        events.append((tf.first - D.WINDOW_US + 1, 1, pos))
        events.append((tf.last + 1, 0, pos))
    events.sort(key=lambda e: (e[0], e[1]))
    best = cur = 0.0
    for _, kind, pos in events:
        if kind:
            cur += live[pos].wbound
            best = max(best, cur)
        else:
            cur -= live[pos].wbound
    expected = live[0].wbound * (1 + 1e-9) if len(live) == 1 else best * (1 + 1e-9) + 1e-6
    assert plain == expected
    if D.window_bound_below(live, threshold):
        assert plain <= threshold


# --- whole sessions: weeks with other amplitudes (and other timings) share the memos -------------------------
SRC = Source("w.stim", "\n".join(f"line {i}" + " " * 40 for i in range(1, 80)))


def _sp(line):
    return at(SRC, line, 1, 4)


def _session(trains, week, limits):
    uses = []
    for i, tr in enumerate(trains):
        f = F(10**6) / F(tr.period_num, tr.period_den)
        spans = {"channel": _sp(2 + tr.channel), "amplitude": _sp(6), "frequency": _sp(7), "pulse": _sp(8),
                 "line": _sp(20 + i), "cycle": _sp(9), "after": _sp(50 + i) if tr.start_us else None}
        uses.append(ChannelUse(f"ch{tr.channel}", tr.channel, F(tr.amp_num, tr.amp_den), f, SHAPES[tr.shape],
                               (ElectrodeInfo("a", F(4), _sp(1)), ElectrodeInfo("b", F(25), _sp(2))),
                               ramp_up_us=tr.ramp_up_us, on_us=tr.on_us, spans=spans))
    dur = max((t.end_us for t in trains), default=0)
    return ResolvedSession(session=week, week=week, duration_us=dur, uses=tuple(uses), trains=tuple(trains),
                           shapes=SHAPES, channels=(), limits=tuple(limits), session_span=_sp(70),
                           train_uses=tuple(range(len(trains))))


def _full(diags):
    def sp(s):
        return None if s is None else (s.line, s.column, s.end_line, s.end_column)
    return [(d.code, d.severity, d.message, sp(d.span), d.hint, tuple((r.message, sp(r.span)) for r in d.related))
            for d in diags]


@st.composite
def weeks(draw):
    """The lines of one session and the weeks of its plan: each week scales the amplitudes (progression) and
    sometimes shifts the later lines (a longer block)."""
    n = draw(st.integers(1, 5))
    base = []
    for _ in range(n):
        t = draw(timings())
        t["cycles"] = max(1, min(t["cycles"], 3))
        base.append((t, draw(st.sampled_from([F(9_000), F(20_000), F(40_000), F(300), F(120_000, 7)]))))
    out = []
    for _ in range(draw(st.integers(2, 4))):
        scale = draw(st.sampled_from([F(1), F(11, 10), F(5, 4), F(2), F(1, 2)]))
        shift = draw(st.sampled_from([0, 0, 1, 500_000]))
        trs = []
        for j, (t, a) in enumerate(base):
            t = dict(t, start_us=t["start_us"] + (shift if j else 0))
            trs.append(_train(t, a * scale))
        out.append(trs)
    return out


LIMITS = [LimitValue("max", "frequency", Quantity.of(40, "Hz"), _sp(60)),
          LimitValue("max", "density", Quantity.of(1, None), _sp(61))]


@settings(max_examples=150, **SETTINGS)
@given(weeks(), st.sampled_from([(), (LIMITS[0],), tuple(LIMITS)]),
       st.sampled_from([LOOPBACK_PROFILE, SHARED]))
def test_weeks_share_the_memos_with_identical_diagnostics(plan, limits, profile):
    # every week with the memos warmed by the weeks before (turning the memos off clears them: plain last)
    sessions = [_session(trains, w, limits) for w, trains in enumerate(plan, start=1)]
    memo = [_full(safety.check_safety(s, profile)) for s in sessions]
    again = [_full(safety.check_safety(s, profile)) for s in sessions]
    plain = [_full(_plain(safety.check_safety, s, profile)) for s in sessions]
    assert memo == plain == again


@settings(max_examples=150, **SETTINGS)
@given(weeks(), st.booleans())
def test_find_overlaps_is_shared_across_amplitudes(plan, shared):
    got = [safety.find_overlaps(trains, SHAPES, shared) for trains in plan]
    assert got == [_plain(safety.find_overlaps, trains, SHAPES, shared) for trains in plan]


# --- per use: an interval of amplitudes without findings ---------------------------------------------------
USE_SHAPES = st.sampled_from([
    PulseShape(((250, 1.0), (250, -1.0)), "biphasic"), PulseShape(((250, 1.0),), "monophasic"),
    PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)), "asymmetric"), PulseShape(((250, 1.0), (250, -1.5)), "custom"),
    PulseShape(tuple(p for _ in range(25) for p in ((200, 1.0), (200, -1.0))), "burst"),
    PulseShape(((10_000, 1.0), (1, 0.0), (10_000, -1.0)), "biphasic")])
USE_LIMITS = [
    LimitValue("max", "current", Quantity.of(50, "mA"), _sp(60)), LimitValue("min", "current", Quantity.of(12, "mA"), _sp(61)),
    LimitValue("max", "charge", Quantity.of(12, "uC"), _sp(62)), LimitValue("max", "voltage", Quantity.of(20, "V"), _sp(63)),
    LimitValue("min", "voltage", Quantity.of(5, "V"), _sp(64)), LimitValue("max", "density", Quantity.of(1, None), _sp(65)),
    LimitValue("min", "density", Quantity.of(F(1, 10), None), _sp(66)), LimitValue("min", "charge", Quantity.of(1, "uC"), _sp(67)),
    LimitValue("max", "frequency", Quantity.of(60, "Hz"), _sp(68))]


@settings(max_examples=150, **SETTINGS)
@given(shape=USE_SHAPES, f=st.sampled_from([F(50), F(333, 10), F(5), F(1000), F(0)]),
       area=st.sampled_from([F(25), F(4), F(1, 2), F(45), None]),
       base=st.one_of(st.integers(-10, 130_000).map(F), st.sampled_from([F(10_000), F(10_001), F(2001, 2)])),
       steps=st.lists(st.sampled_from([F(1, 2), F(1), F(21, 20), F(11, 10), F(3, 2), F(2), F(3), F(0)]),
                      min_size=1, max_size=8),
       limits=st.lists(st.sampled_from(USE_LIMITS), max_size=3), ramp=st.booleans(), delivered=st.booleans(),
       threshold=st.sampled_from([safety.RAMP_WARN_THRESHOLD_UA, 40_000]),
       profile=st.sampled_from([LOOPBACK_PROFILE, DeviceProfile(name="strict", max_current_ua=45_000)]))
def test_amplitudes_inside_the_finding_free_interval_give_what_the_plain_rules_give(
        shape, f, area, base, steps, limits, ramp, delivered, threshold, profile):
    amps = [base] + [base * k for k in steps]
    # one line's values with the amplitude of each "week": the memo (its interval widened by the earlier weeks
    # and by its probes) answers exactly as the plain computation does
    electrodes = () if area is None else (ElectrodeInfo("a", area, _sp(1)), ElectrodeInfo("b", F(25), _sp(2)))
    sessions = []
    for w, a in enumerate(amps, start=1):
        use = ChannelUse("ch1", 1, a, f, shape, electrodes, ramp_up_us=0 if ramp else 1_000_000, on_us=5_000_000,
                         cycle="c", spans={"channel": _sp(3), "amplitude": _sp(6), "frequency": _sp(7),
                                           "pulse": _sp(8), "line": _sp(20), "cycle": _sp(9)})
        trains = ()
        if delivered and f > 0:
            p = F(10**6) / f
            trains = (Train(1, 0, 1, 6_000_000, 5_000_000, 0, 0, p.numerator, p.denominator,
                            abs(a.numerator) or 1, a.denominator, 0),)
        s = ResolvedSession(session=w, week=w, duration_us=6_000_000, uses=(use,), trains=trains, shapes=(shape,),
                            channels=(), limits=tuple(limits), session_span=_sp(70),
                            train_uses=(0,) if trains else None)
        sessions.append(s)
    # the memo warmed week by week; the plain computation last (turning the memos off clears them)
    memo = [_full(safety.check_safety(s, profile, ramp_threshold_ua=threshold)) for s in sessions]
    plain = [_full(_plain(safety.check_safety, s, profile, ramp_threshold_ua=threshold)) for s in sessions]
    assert memo == plain


def test_a_progression_of_amplitudes_costs_no_computation_below_its_thresholds(monkeypatch):
    # twelve weeks raising one amplitude: every week lies below the use's exact thresholds (computed once for its
    # amplitude-free values), so no week runs the plain rules; the first amplitude above one of them does
    calls = []
    real = safety._use_result
    monkeypatch.setattr(safety, "_use_result", lambda ctx, use: calls.append(use.amplitude_ua) or real(ctx, use))
    shape = PulseShape(((300, 1.0), (50, 0.0), (300, -1.0)), "biphasic")
    for week in range(1, 13):
        use = ChannelUse("ch1", 1, F(20_000 + 1_000 * week), F(40), shape,
                         (ElectrodeInfo("a", F(45), _sp(1)), ElectrodeInfo("b", F(45), _sp(2))),
                         ramp_up_us=2_000_000, on_us=10_000_000, spans={"line": _sp(20)})
        s = ResolvedSession(session=week, week=week, duration_us=60_000_000, uses=(use,), trains=(), shapes=(shape,),
                            channels=(), limits=(LimitValue("max", "current", Quantity.of(90, "mA"), _sp(60)),))
        assert safety.check_safety(s) == []
    assert calls == []
    # exactly at the protocol's 90 mA nothing is computed either; 1 µA above it the rules run and report S006
    for amp, codes in ((F(90_000), []), (F(90_001), ["S006"]), (F(95_000), ["S006"])):
        use = ChannelUse("ch1", 1, amp, F(40), shape, use.electrodes, ramp_up_us=2_000_000, on_us=10_000_000,
                         spans={"line": _sp(20)})
        s = ResolvedSession(session=13, week=13, duration_us=60_000_000, uses=(use,), trains=(), shapes=(shape,),
                            channels=(), limits=s.limits)
        assert [d.code for d in safety.check_safety(s)] == codes
    assert calls == [F(90_001), F(95_000)]


def test_the_collector_is_paused_only_while_the_rules_run():
    import gc

    s = _session([_train(dict(channel=1, start_us=0, cycles=2, cycle_us=2_000_000, on_us=1_000_000, ramp_up_us=0,
                                  ramp_down_us=0, period_num=20_000, period_den=1, shape=0), F(20_000))], 1, ())
    assert gc.isenabled()
    first = _full(safety.check_safety(s))
    assert gc.isenabled()
    gc.disable()
    try:
        assert _full(safety.check_safety(s)) == first
        assert not gc.isenabled()       # a caller's own pause is left as it was
    finally:
        gc.enable()
    assert [d[0] for d in first] == ["S012"]


def _s013_train(ch: int, start: int, cycles: int, cycle_us: int, on_us: int, ramp: int, amp_ua: int) -> Train:
    return Train(ch, start, cycles, cycle_us, on_us, ramp, ramp, 20_000, 1, amp_ua, 1, 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amps=st.lists(st.integers(1, 3), min_size=4, max_size=4), ramp=st.sampled_from([0, 45_000, 200_000]),
       shift=st.integers(0, 40_000), shared=st.booleans())
def test_overlap_memo_keyed_on_train_numbers_is_the_plain_search(amps, ramp, shift, shared):
    """S013's sweep memo and one cycle's offsets are keyed on a train's numbers, not on its offsets: trains whose
    tiny amplitudes mask different slots of a ramp (0.5 µA rounds to 0) must not reuse each other's result. The
    memo is warmed by the same clusters with other amplitudes first; each answer equals the memo-off search."""
    shapes = (PulseShape(((15_000, 1.0), (15_000, -1.0)), "biphasic"),)

    def trains(a: list[int]) -> list[Train]:
        return [_s013_train(c, shift + (c - 1) * 5_000, 3, 1_000_000, 400_000, ramp, a[c - 1]) for c in (1, 2, 3, 4)]

    for warm in ([3, 3, 3, 3], [1, 2, 1, 2]):
        O.find_overlaps(trains(warm), shapes, shared)
    memo = O.find_overlaps(trains(amps), shapes, shared)
    safety.set_cache_enabled(False)
    plain = O.find_overlaps(trains(amps), shapes, shared)
    assert memo == plain
    off = O.train_cycle_offsets(trains(amps)[0])
    safety.set_cache_enabled(True)
    again = O.train_cycle_offsets(trains(amps)[0])
    assert again.tolist() == off.tolist() and not again.flags.writeable


THRESHOLDS = [0, 300, 10_000, F(301, 2), F(9_000), F(300)]


@settings(max_examples=120, **SETTINGS)
@given(weeks(), st.lists(st.sampled_from(THRESHOLDS), min_size=2, max_size=3), st.sampled_from([(), (LIMITS[0],)]))
def test_s012_texts_kept_across_weeks_are_the_ones_built_anew(plan, thresholds, limits):
    # S012's message, hint and note are kept per their values and spans across weeks and checks (here: the plan
    # checked at several thresholds, of both types, one after the other): every finding equals the plain
    # path's, which builds each anew
    sessions = [_session(trains, w, limits) for w, trains in enumerate(plan, start=1)]
    memo = [[_full(safety.check_safety(s, ramp_threshold_ua=th)) for s in sessions] for th in thresholds]
    again = [[_full(safety.check_safety(s, ramp_threshold_ua=th)) for s in sessions] for th in thresholds]
    plain = [[_full(_plain(safety.check_safety, s, ramp_threshold_ua=th)) for s in sessions] for th in thresholds]
    assert memo == plain == again


_PROFILES = [LOOPBACK_PROFILE, SHARED, DeviceProfile(name="shared", independent_sources=False)]
_CTX_LIMITS = [LIMITS[0], LIMITS[1], LimitValue("max", "frequency", Quantity.of(40, "Hz"), _sp(62)),
               LimitValue("max", "frequency", Quantity.of(F(81, 2), "Hz"), _sp(60))]


@settings(max_examples=200, **SETTINGS)
@given(st.lists(st.tuples(st.sampled_from(_PROFILES), st.lists(st.sampled_from(_CTX_LIMITS), max_size=3),
                          st.booleans(), st.sampled_from([10_000, F(10_000), 5_000])), min_size=1, max_size=6))
def test_a_context_number_kept_per_identity_is_the_one_of_its_values(contexts):
    # _Context.memo_key keeps a context's number per the identities of its profile and limits: it must be the
    # number its values give (computed with nothing kept), equal for equal values and different otherwise
    def number(profile, limits, allow, threshold, keep):
        if not keep:
            safety._CTX_KEYS.clear()
        s = ResolvedSession(session=1, week=1, duration_us=0, uses=(), trains=(), shapes=(), channels=(),
                            limits=tuple(limits), allow_monophasic=allow, session_span=None, train_uses=())
        return safety._Context(s, profile, threshold).memo_key()

    warm = [number(*c, keep=True) for c in contexts]
    cold = [number(*c, keep=False) for c in contexts]
    assert warm == cold

    def values(c):
        profile, limits, allow, threshold = c
        return (profile, tuple((x.bound, x.quantity, x.value, type(x.value.value)) for x in limits), allow, threshold,
                type(threshold))

    for c1, k1 in zip(contexts, warm):
        for c2, k2 in zip(contexts, warm):
            assert (k1 == k2) == (values(c1) == values(c2))


_texts = st.text(max_size=12)
_spans = st.one_of(st.none(), st.integers(1, 60).map(_sp))


@settings(max_examples=200, **SETTINGS)
@given(st.sampled_from(["S001", "S012", "S013", "E410"]), _texts, _spans, st.sampled_from(["error", "warning"]),
       st.one_of(st.none(), _texts), st.lists(st.tuples(_texts, st.integers(1, 60).map(_sp)), max_size=2))
def test_a_finding_made_without_init_is_the_diagnostic_init_makes(code, message, span, severity, hint, related):
    # findings.make_diagnostic fills a Diagnostic's fields directly: the object must be the one its __init__
    # makes (fields, their order, equality, hash, repr, rendering)
    from stimscript.compiler.findings import make_diagnostic
    from stimscript.errors import Diagnostic, Related

    rel = tuple(Related(m, s) for m, s in related)
    made = make_diagnostic(code, message, span, severity, hint, rel)
    plain = Diagnostic(code, message, span, severity=severity, hint=hint, related=rel)
    assert type(made) is Diagnostic
    assert list(made.__dict__.items()) == list(plain.__dict__.items())
    assert made == plain and hash(made) == hash(plain) and repr(made) == repr(plain)
    if span is not None:
        assert made.render() == plain.render()
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        made.code = "X"   # still frozen


_ELECTRODES = [(ElectrodeInfo("a", F(4), _sp(1)), ElectrodeInfo("b", F(25), _sp(2))),
               (ElectrodeInfo("c", F(1, 3), _sp(3)), ElectrodeInfo("d", 2, _sp(4)))]
_FREQS = [F(50), 50, F(1000, 3), 40]


@settings(max_examples=150, **SETTINGS)
@example([(1, 0, 0, 0, False), (1.0, 0, 0, 0, False)], [[F(10**6, 7)] * 4, [F(10**6, 7)] * 4], (), LOOPBACK_PROFILE)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 1.0, 9]), st.integers(0, 3), st.integers(0, 1), st.integers(0, 2),
                          st.booleans()), min_size=1, max_size=4),
       st.lists(st.lists(st.sampled_from([F(900), F(9_000), F(40_000), 120_000, F(10**6, 7)]), min_size=4,
                         max_size=4), min_size=2, max_size=4),
       st.sampled_from([(), (LIMITS[0],), tuple(LIMITS)]), st.sampled_from([LOOPBACK_PROFILE, SHARED]))
def test_weeks_sharing_shape_electrode_and_frequency_objects_give_the_plain_findings(lines, amplitudes, limits,
                                                                                   profile):
    # _memo_use keeps a use's value key and verdict per the identities of its shape, electrodes and frequency
    # (the weeks of a plan share those objects): with the same objects under other channel numbers (of
    # another type), amplitudes and contexts, every week's findings equal the plain path's
    def session(week, amps):
        uses = []
        for k, (number, f, e, s, ramp) in enumerate(lines):
            spans = {"channel": _sp(2), "amplitude": _sp(6), "frequency": _sp(7), "pulse": _sp(8),
                     "line": _sp(20 + k), "cycle": _sp(9)}
            uses.append(ChannelUse(f"ch{int(number)}", number, amps[k], _FREQS[f], SHAPES[s], _ELECTRODES[e],
                                   ramp_up_us=1000 if ramp else 0, on_us=5000, spans=spans))
        return ResolvedSession(session=week, week=week, duration_us=0, uses=tuple(uses), trains=(), shapes=SHAPES,
                               channels=(), limits=tuple(limits), session_span=_sp(70))

    sessions = [session(w, amps) for w, amps in enumerate(amplitudes, start=1)]
    memo = [_full(safety.check_safety(s, profile, schedule=False)) for s in sessions]
    again = [_full(safety.check_safety(s, profile, schedule=False)) for s in sessions]
    plain = [_full(_plain(safety.check_safety, s, profile, schedule=False)) for s in sessions]
    assert memo == plain == again
