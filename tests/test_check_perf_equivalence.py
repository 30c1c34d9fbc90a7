"""The memoised safety paths give exactly the diagnostics of the plain computation (not a timing test).

``compiler.safety`` memoises per-use findings on their values and re-attaches spans, related notes and the
week suffix per use; ``compiler.energy`` memoises per-shape aggregates; ``find_overlaps`` skips trains that
provably cannot overlap and memoises sweeps. Each test compares the memoised result with the result
computed with every memo off (``safety.set_cache_enabled(False)``), or, for the overlap search, with the
former straightforward algorithm written out below.
"""
from __future__ import annotations

import glob
import os
from fractions import Fraction as F

import pytest
from hypothesis import given, settings, strategies as st

import stimscript
from stimscript.compiler import safety
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.errors import ProtocolError
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile
from stimscript.spans import Source, at
from stimscript.units import Quantity
from tests.protocols import protocol_files, bench_protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = DeviceProfile(name="shared", independent_sources=False)
STRICT = DeviceProfile(name="strict", channels=3, max_current_ua=45_000, min_phase_us=100, max_phase_us=400,
                       max_rate_hz=45, independent_sources=False)
PROFILES = [LOOPBACK_PROFILE, SHARED, STRICT]


def _full(diags):
    """Everything a diagnostic carries, spans with their file (Span equality ignores the source)."""
    def sp(s):
        return None if s is None else (s.file, s.line, s.column, s.end_line, s.end_column, s.start_pos, s.end_pos)
    return [(d.code, d.severity, d.message, sp(d.span), d.hint, tuple((r.message, sp(r.span)) for r in d.related))
            for d in diags]


def _uncached(fn, *args, **kw):
    before = safety.set_cache_enabled(False)
    try:
        return fn(*args, **kw)
    finally:
        safety.set_cache_enabled(before)


pytestmark = pytest.mark.usefixtures("fresh_safety_memos")


# --- whole protocols: every week of every example and corpus file, on three device profiles ---------------
def _weeks(proto):
    return sorted(proto._weeks)


@pytest.mark.parametrize("path", protocol_files(), ids=os.path.basename)
def test_every_week_of_the_examples_gives_identical_diagnostics(path):
    proto = stimscript.load(path)
    for week in _weeks(proto):
        resolved = proto._weeks[week].resolved
        if resolved is None:
            continue
        for profile in PROFILES:
            for show_week in (None, True):
                first = safety.check_safety(resolved, profile, show_week=show_week)
                again = safety.check_safety(resolved, profile, show_week=show_week)  # served from the memo
                plain = _uncached(safety.check_safety, resolved, profile, show_week=show_week)
                assert _full(first) == _full(plain) == _full(again)


def test_the_benchmark_protocol_gives_identical_diagnostics():
    proto = stimscript.loads(bench_protocol(), "bench.stim")
    for week in _weeks(proto):
        resolved = proto._weeks[week].resolved
        for profile in PROFILES:
            assert _full(safety.check_safety(resolved, profile)) == \
                _full(_uncached(safety.check_safety, resolved, profile))


def _load_diags(text, name, device=None):
    try:
        proto = stimscript.loads(text, name, device=device)
    except ProtocolError as exc:
        return "error", _full(exc.diagnostics)
    return "ok", _full(proto.warnings), [
        (w, proto._weeks[w].resolved.trains if proto._weeks[w].resolved else None) for w in _weeks(proto)]


@pytest.mark.parametrize("path", protocol_files()
                         + sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "semantic", "*.stim"))),
                         ids=os.path.basename)
@pytest.mark.parametrize("device", [None, SHARED, STRICT], ids=["loopback", "shared", "strict"])
def test_loads_is_identical_with_and_without_memos(path, device):
    text = open(path, encoding="utf-8").read()
    cached = _load_diags(text, path, device)
    cached_again = _load_diags(text, path, device)
    plain = _uncached(_load_diags, text, path, device)
    assert cached == plain == cached_again


# --- random sessions: the same values under different spans, weeks and profiles ---------------------------
SRC_A = Source("a.stim", "\n".join(f"line {i}" + " " * 60 for i in range(1, 80)))
SRC_B = Source("b.stim", "\n".join(f"other {i}" + " " * 60 for i in range(1, 80)))


def _spans(src, base, keys):
    return {k: at(src, base + i, 1, 5) for i, k in enumerate(keys)}


ALL_KEYS = ("channel", "electrodes", "pulse", "frequency", "amplitude", "line", "cycle")

shapes = st.sampled_from([
    PulseShape(((250, 1.0), (250, -1.0)), "biphasic"),
    PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic"),
    PulseShape(((250, 1.0),), "monophasic"),
    PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)), "asymmetric"),
    PulseShape(((200, 1.0), (800, -0.2)), "custom"),
    PulseShape(tuple(p for _ in range(25) for p in ((200, 1.0), (200, -1.0))), "burst"),
    PulseShape(((250, 1.0), (250, -1.0), (4500, 0.0), (250, 1.0), (250, -1.0)), "doublet"),
    PulseShape(((5, 1.0), (12_000, -1.0)), "custom"),
    PulseShape(((10_000, 1.0), (1, 0.0), (10_000, -1.0)), "biphasic"),
    PulseShape(((250, 1.0), (250, -1.5)), "custom"),
    PulseShape(((300, 1), (300, -1)), "biphasic"),   # int amplitudes: equal values, other types
])

LIMITS = [
    LimitValue("max", "current", Quantity.of(50, "mA")), LimitValue("min", "current", Quantity.of(12, "mA")),
    LimitValue("max", "frequency", Quantity.of(60, "Hz")), LimitValue("min", "frequency", Quantity.of(20, "Hz")),
    LimitValue("max", "pulse width", Quantity.of(400, "us")), LimitValue("min", "pulse width", Quantity.of(100, "us")),
    LimitValue("max", "charge", Quantity.of(12, "uC")), LimitValue("max", "voltage", Quantity.of(20, "V")),
    LimitValue("min", "voltage", Quantity.of(5, "V")), LimitValue("max", "density", Quantity.of(1, None)),
    LimitValue("min", "density", Quantity.of(F(1, 10), None)), LimitValue("max", "duration", Quantity.of(20, "min")),
    LimitValue("max", "channels", Quantity.of(2, None)), LimitValue("max", "current", Quantity.of(200, "mA")),
    LimitValue("max", "bogus", Quantity.of(1, None)), LimitValue("max", "current", Quantity.of(3, "Hz")),
]


@st.composite
def uses(draw):
    areas = [draw(st.sampled_from([F(25), F("96.52"), F(4), F(1, 2), F(45)])) for _ in range(2)]
    electrodes = draw(st.sampled_from([(), (ElectrodeInfo("p", areas[0]), ElectrodeInfo("d", areas[1]))]))
    return dict(
        channel=draw(st.sampled_from(["quad", "hams"])), number=draw(st.sampled_from([1, 2, 9])),
        amplitude_ua=draw(st.one_of(st.sampled_from([F(0), F(10_000), F(10_001), F(40_000), F(120_000),
                                                     F(120_001), F(-5), F(2001, 2)]),
                                    st.integers(0, 130_000).map(F))),
        frequency_hz=draw(st.sampled_from([F(50), F(1000), F(1001), F(333, 10), F(0), F(5), 50])),
        shape=draw(shapes), electrodes=electrodes,
        ramp_up_us=draw(st.sampled_from([0, 1_000_000])), on_us=draw(st.sampled_from([0, 10_000_000])),
    )


def _session(values, src, base, week, limits, allow, keys=ALL_KEYS, duration_us=60_000_000):
    us = []
    for j, v in enumerate(values):
        v = dict(v)
        if v["electrodes"]:
            v["electrodes"] = tuple(ElectrodeInfo(e.name, e.area_cm2, at(src, base + 40 + i + 2 * j, 1, 3))
                                    for i, e in enumerate(v["electrodes"]))
        us.append(ChannelUse(**v, spans=_spans(src, base + 10 * j, keys)))
    lims = tuple(LimitValue(lim.bound, lim.quantity, lim.value, at(src, base + 60 + i, 1, 6))
                 for i, lim in enumerate(limits))
    return ResolvedSession(session=1, week=week, duration_us=duration_us, uses=tuple(us), trains=(), shapes=(),
                           channels=(), limits=lims, allow_monophasic=allow, session_span=at(src, 78, 1, 3))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(uses(), min_size=1, max_size=4),
       limits=st.lists(st.sampled_from(LIMITS), max_size=4),
       allow=st.booleans(), week=st.sampled_from([1, 3]),
       profile=st.sampled_from(PROFILES),
       keys=st.sampled_from([ALL_KEYS, ("channel", "line"), ("channel", "pulse", "line", "cycle")]),
       threshold=st.sampled_from([safety.RAMP_WARN_THRESHOLD_UA, 40_000]))
def test_memoised_check_safety_equals_the_plain_one(values, limits, allow, week, profile, keys, threshold):
    a = _session(values, SRC_A, 1, week, limits, allow)
    b = _session(values, SRC_B, 2, 1, limits, allow, keys=keys)  # the same values elsewhere: spans re-attached
    for s in (a, b, a):
        cached = safety.check_safety(s, profile, ramp_threshold_ua=threshold)
        plain = _uncached(safety.check_safety, s, profile, ramp_threshold_ua=threshold)
        assert _full(cached) == _full(plain)


def test_equal_values_of_other_types_do_not_share_findings():
    # a float duration prints differently from an int one; the memo must not hand one the other's text
    int_shape = PulseShape(((10_000, 1.0), (1, 0.0), (10_000, -1.0)), "biphasic")
    float_shape = PulseShape(((10_000.0, 1.0), (1, 0.0), (10_000, -1.0)), "biphasic")
    assert int_shape == float_shape
    base = dict(channel="quad", number=1, amplitude_ua=F(40_000), frequency_hz=F(50), electrodes=(),
                ramp_up_us=1_000_000, on_us=10_000_000)
    for shape in (int_shape, float_shape):
        s = _session([dict(base, shape=shape)], SRC_A, 1, 1, [], False)
        assert _full(safety.check_safety(s)) == _full(_uncached(safety.check_safety, s))
    # a float relative amplitude is read as its decimal (0.1 -> 1/10), a Fraction as itself
    dec = PulseShape(((250, 1.0), (2500, -0.1)), "custom")
    binary = PulseShape(((250, 1.0), (2500, F(0.1) * -1)), "custom")
    assert dec == binary
    for shape in (dec, binary):
        s = _session([dict(base, shape=shape)], SRC_A, 1, 1, [], False)
        assert _full(safety.check_safety(s)) == _full(_uncached(safety.check_safety, s))


# --- the overlap search against the former straightforward algorithm ------------------------------------
def _reference_find_overlaps(trains, shapes, shared_source, target_pulses=200_000):
    """find_overlaps as it was: expand every train's cycle pattern, cluster by exact busy spans, sweep."""
    tps = []
    for i, tr in enumerate(trains):
        off = safety.train_cycle_offsets(tr)
        dur = shapes[tr.shape].duration_us if 0 <= tr.shape < len(shapes) else 0
        if len(off) and dur > 0:
            tps.append(safety._TrainPulses(i, tr, off, dur))
    found = []
    for tp in tps:
        ov = safety._single_train_overlap(tp)
        if ov is not None:
            found.append(ov)
    if shared_source:
        groups = [tps]
    else:
        by_channel = {}
        for tp in tps:
            by_channel.setdefault(tp.train.channel, []).append(tp)
        groups = list(by_channel.values())
    for group in groups:
        for cluster in safety._clusters(group):
            if len(cluster) >= 2:
                found.extend(safety._sweep(cluster, shared_source, target_pulses))
    found.sort(key=lambda o: (o.t_second, o.t_first, o.kind))
    return safety._dedupe_overlaps(found)


@st.composite
def trains(draw):
    f = draw(st.sampled_from([F(50), F(20), F(333, 10), F(7), F(1000)]))
    p = F(10**6) / f
    on = draw(st.sampled_from([0, 400, 20_000, 60_000, 100_000, 1_000_000]))
    rest = draw(st.sampled_from([0, 1, 300, 20_000, 500_000]))
    up = draw(st.sampled_from([0, on // 2, on]))
    down = draw(st.sampled_from([0, (on - up) // 2]))
    amp = draw(st.sampled_from([F(40_000), F(1), F(1, 3), F(0), F(3, 2)]))
    return Train(draw(st.integers(1, 3)), draw(st.integers(0, 3)) * draw(st.sampled_from([0, 250, 10_000, 600_000])),
                 draw(st.integers(0, 4)), on + rest, on, up, down, p.numerator, p.denominator,
                 amp.numerator, amp.denominator, draw(st.integers(0, 2)))


OVERLAP_SHAPES = (PulseShape(((250, 1.0), (250, -1.0)), "biphasic"),
                  PulseShape(((7_500, 1.0), (7_500, -1.0)), "biphasic"),
                  PulseShape(((0, 1.0),), "monophasic"))


@settings(max_examples=200, deadline=None)
@given(ts=st.lists(trains(), max_size=6), shared=st.booleans())
def test_find_overlaps_equals_the_straightforward_search(ts, shared):
    expected = _reference_find_overlaps(ts, OVERLAP_SHAPES, shared)
    assert safety.find_overlaps(ts, OVERLAP_SHAPES, shared) == expected
    assert safety.find_overlaps(ts, OVERLAP_SHAPES, shared) == expected  # memoised sweeps
    assert _uncached(safety.find_overlaps, ts, OVERLAP_SHAPES, shared) == expected


def test_find_overlaps_30_min_8_channels_equals_the_straightforward_search():
    def train(ch, start, cycles, cycle_us, on_us, up, down):
        p = F(10**6, 50)
        return Train(ch, start, cycles, cycle_us, on_us, up, down, p.numerator, p.denominator, 40_000, 1, 0)

    bi = (OVERLAP_SHAPES[0],)
    ok = [train(c, (c - 1) * 2500, 120, 15_000_000, 10_000_000, 2_000_000, 1_000_000) for c in range(1, 9)]
    clash = ok[:7] + [train(8, 6 * 2500 + 100, 120, 15_000_000, 10_000_000, 2_000_000, 1_000_000)]
    for ts in (ok, clash):
        for shared in (True, False):
            assert safety.find_overlaps(ts, bi, shared) == _reference_find_overlaps(ts, bi, shared)
