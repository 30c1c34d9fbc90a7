"""The per-use thresholds of ``safety._Verdict`` are the rules' own: an amplitude is "clean" exactly when the plain
rules (every memo off) report nothing for it.

``_memo_use`` answers every amplitude inside a use's thresholds without running the rules, so the thresholds must
never admit an amplitude that has a finding (a weakened rule) and should not refuse one that has none (wasted
work). Each test compares ``_Verdict.clean`` with the plain computation, cold and with the memo warmed by other
uses and other amplitudes, and plants amplitudes just above and at every threshold.
"""
from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stimscript.compiler import safety
from stimscript.compiler.ir import PulseShape
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile
from stimscript.spans import Source, at
from stimscript.units import Quantity

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SRC = Source("v.stim", "\n".join(f"line {i}" + " " * 40 for i in range(1, 80)))


def _sp(line):
    return at(SRC, line, 1, 4)


SHAPES = [PulseShape(((250, 1.0), (250, -1.0)), "biphasic"), PulseShape(((250, 1.0),), "monophasic"),
          PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)), "asymmetric"),
          PulseShape(((250, 1.0), (250, -1.5)), "custom"), PulseShape(((300, 0.0),), "custom"),
          PulseShape(tuple(p for _ in range(25) for p in ((200, 1.0), (200, -1.0))), "burst"),
          PulseShape(((10_000, 1.0), (1, 0.0), (10_000, -1.0)), "biphasic"),
          PulseShape(((20, 1.0), (20, -1.0)), "biphasic")]
LIMITS = [LimitValue(b, q, Quantity.of(v, u), _sp(60 + i)) for i, (b, q, v, u) in enumerate([
    ("max", "current", 50, "mA"), ("min", "current", 12, "mA"), ("max", "charge", 12, "uC"),
    ("min", "charge", 1, "uC"), ("max", "voltage", 20, "V"), ("min", "voltage", 5, "V"),
    ("max", "density", 1, None), ("min", "density", F(1, 10), None), ("max", "density", -1, None),
    ("max", "frequency", 60, "Hz"), ("min", "frequency", 10, "Hz"), ("max", "pulse width", 300, "us"),
    ("min", "pulse width", 100, "us"), ("max", "duration", 1, "h"), ("max", "channels", 2, None),
    ("max", "current", 3, "Hz")])]
PROFILES = [LOOPBACK_PROFILE, DeviceProfile(name="strict", channels=2, max_current_ua=45_000, min_phase_us=50,
                                            max_phase_us=5_000, max_rate_hz=200)]


pytestmark = pytest.mark.usefixtures("fresh_safety_memos")


def _use(shape, amp, f, area, ramp, number=1):
    electrodes = () if area is None else (ElectrodeInfo("a", area, _sp(1)), ElectrodeInfo("b", F(25), _sp(2)))
    return ChannelUse("ch1", number, amp, f, shape, electrodes, ramp_up_us=0 if ramp else 1_000_000,
                      on_us=5_000_000, cycle="c", spans={"channel": _sp(3), "amplitude": _sp(6), "frequency": _sp(7),
                                                         "pulse": _sp(8), "line": _sp(20), "cycle": _sp(9)})


def _session(use, limits, week=1):
    return ResolvedSession(session=week, week=week, duration_us=6_000_000, uses=(use,), trains=(),
                           shapes=(use.shape,), channels=(), limits=tuple(limits), session_span=_sp(70))


def _plain_clean(resolved, use, profile, threshold, delivered):
    before = safety.set_cache_enabled(False)
    try:
        ctx = safety._Context(resolved, profile, threshold)
        ctx.delivered = delivered
        return safety._use_result(ctx, use) == safety._NO_FINDINGS
    finally:
        safety.set_cache_enabled(before)


def _verdict(resolved, use, profile, threshold, delivered):
    ctx = safety._Context(resolved, profile, threshold)
    ctx.delivered = delivered
    return safety._verdict(ctx, use, use.ramp_up_us == 0 and use.on_us > 0)


def _thresholds(v):
    """Amplitudes at and next to every bound of a verdict (where a wrong comparison would show)."""
    out = []
    for n, d in (v.lo, v.hi):
        b = F(n, d)
        out += [b, b - F(1, 7), b + F(1, 7), b - 1, b + 1]
    for pair in (v.lo2, v.hi2):
        b2 = F(*pair) if pair is not None else None
        if b2 is not None and b2 > 0:
            r = F(int(b2 ** 0.5 * 10**6), 10**6)   # a rational just around the square root
            out += [r, r + F(1, 10**6), r - F(1, 10**6)]
    if v.shannon is not None:
        r = F(int((F(10) ** F(37, 20) / v.shannon) ** 0.5))
        out += [r, r + 1, r - 1]
    return [a for a in out if a >= -1]


@settings(max_examples=300, **SETTINGS)
@given(shape=st.sampled_from(SHAPES), f=st.sampled_from([F(50), F(333, 10), F(5), F(1000), F(0), F(40), 50]),
       area=st.sampled_from([F(25), F(4), F(1, 2), F(45), 3, None, F(0)]),
       amps=st.lists(st.one_of(st.integers(-10, 200_000).map(F), st.integers(0, 200_000),
                               st.sampled_from([F(10_000), F(10_001), F(2001, 2), F(90_001, 3)])), min_size=1, max_size=6),
       limits=st.lists(st.sampled_from(LIMITS), max_size=4), ramp=st.booleans(), delivered=st.booleans(),
       allow=st.booleans(), threshold=st.sampled_from([safety.RAMP_WARN_THRESHOLD_UA, 40_000, F(20_001, 2)]),
       profile=st.sampled_from(PROFILES), number=st.sampled_from([1, 2, 3]))
def test_clean_is_exactly_no_finding_of_the_plain_rules(shape, f, area, amps, limits, ramp, delivered, allow,
                                                        threshold, profile, number):
    use0 = _use(shape, amps[0], f, area, ramp, number)
    resolved = _session(use0, limits)
    resolved.allow_monophasic = allow
    v = _verdict(resolved, use0, profile, threshold, delivered)
    if v is None:
        # an amplitude-free finding: the plain rules report something at every amplitude
        for a in amps:
            use = _use(shape, a, f, area, ramp, number)
            assert not _plain_clean(resolved, use, profile, threshold, delivered)
        return
    for a in amps + _thresholds(v):
        use = _use(shape, a, f, area, ramp, number)
        assert v.clean(a) == _plain_clean(resolved, use, profile, threshold, delivered), a


@settings(max_examples=150, **SETTINGS)
@given(shape=st.sampled_from(SHAPES), f=st.sampled_from([F(50), F(333, 10), F(40)]),
       area=st.sampled_from([F(25), F(4), F(1, 2)]),
       weeks=st.lists(st.integers(0, 130_000).map(F), min_size=2, max_size=10),
       limits=st.lists(st.sampled_from(LIMITS), max_size=3), delivered=st.booleans(),
       profile=st.sampled_from(PROFILES))
def test_weeks_of_amplitudes_through_check_safety_equal_the_plain_rules_warm_and_cold(
        shape, f, area, weeks, limits, delivered, profile):
    # the weeks of one line, each with another amplitude; then the same weeks again (the memo filled by all of
    # them, in another order), each compared with the plain rules
    sessions = [_session(_use(shape, a, f, area, False), limits, week=w) for w, a in enumerate(weeks, start=1)]
    if delivered:
        for s in sessions:
            s.train_uses = ()
    memo = [safety.check_safety(s, profile) for s in sessions]
    again = [safety.check_safety(s, profile) for s in reversed(sessions)][::-1]
    before = safety.set_cache_enabled(False)
    try:
        plain = [safety.check_safety(s, profile) for s in sessions]
    finally:
        safety.set_cache_enabled(before)
    assert memo == plain == again


def test_one_microampere_above_each_threshold_is_reported():
    # planted: each rule's threshold amplitude passes, one µA (or a rational step) above it reports
    shape = SHAPES[0]
    cases = [
        ([], None, ["S002"], F(120_000)),                                    # the device maximum
        ([LIMITS[0]], None, ["S006"], F(50_000)),                            # max current 50 mA
        ([LIMITS[2]], None, ["S006"], F(48_000)),                            # max charge 12 µC over 250 µs
        ([LIMITS[4]], None, ["S006"], F(40_000)),                            # max voltage 20 V into 500 Ω
    ]
    for limits, area, codes, top in cases:
        ok = _session(_use(shape, top, F(40), area, False), limits)
        bad = _session(_use(shape, top + 1, F(40), area, False), limits, week=2)
        safety.clear_caches()
        assert safety.check_safety(ok) == []
        assert [d.code for d in safety.check_safety(bad)] == codes
        # and below the threshold again after the finding (the memo keeps nothing wrong)
        assert safety.check_safety(_session(_use(shape, top - 1, F(40), area, False), limits, week=3)) == []
    # S012 without a ramp: at the threshold nothing, one µA above a warning
    at_t = _session(_use(shape, F(safety.RAMP_WARN_THRESHOLD_UA), F(40), None, True), [])
    above = _session(_use(shape, F(safety.RAMP_WARN_THRESHOLD_UA + 1), F(40), None, True), [], week=2)
    assert safety.check_safety(at_t) == []
    assert [d.code for d in safety.check_safety(above)] == ["S012"]
    # S011 Shannon on a small electrode: found from the amplitude the plain rules find it at (23.8 mA here)
    small = F(1, 2)
    amps = [F(a) for a in range(20_000, 28_000, 250)]

    def s011(a, week):
        return "S011" in [d.code for d in safety.check_safety(_session(_use(shape, a, F(40), small, False), [],
                                                                          week=week))]
    got = [s011(a, i + 1) for i, a in enumerate(amps)]
    before = safety.set_cache_enabled(False)
    try:
        plain = [s011(a, i + 1) for i, a in enumerate(amps)]
    finally:
        safety.set_cache_enabled(before)
    assert got == plain and any(plain) and not all(plain)
