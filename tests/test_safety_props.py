"""Property tests: check_safety against an independent, straightforward float computation of docs/safety.md,
and the exact overlap check against a brute-force expansion with the reference expander."""
from __future__ import annotations

import math
from fractions import Fraction as F

from hypothesis import assume, example, given, strategies as st

from stimscript.compiler import expand_py
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.compiler.safety import check_safety, find_overlaps, train_cycle_offsets
from stimscript.profile import LOOPBACK_PROFILE as P
from stimscript.units import Quantity

REL = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 0.2, 0.99, 0.1]


@st.composite
def shapes(draw):
    kind = draw(st.sampled_from(["monophasic", "biphasic", "asymmetric", "burst", "doublet", "custom"]))
    w = draw(st.integers(1, 12_000))
    if kind == "monophasic":
        return PulseShape(((w, 1.0),), kind)
    if kind == "biphasic":
        g = draw(st.sampled_from([0, 50, 100]))
        return PulseShape(((w, 1.0),) + (((g, 0.0),) if g else ()) + ((w, -1.0),), kind)
    if kind == "asymmetric":
        r = draw(st.sampled_from([2, 4, 5]))
        return PulseShape(((w, 1.0), (r * w, -1.0 / r)), kind)
    if kind == "burst":
        half = draw(st.integers(5, 500))
        n = draw(st.integers(1, 30))
        return PulseShape(tuple(p for _ in range(n) for p in ((half, 1.0), (half, -1.0))), kind)
    if kind == "doublet":
        gap = draw(st.integers(0, 5_000))
        return PulseShape(((w, 1.0), (w, -1.0), (gap, 0.0), (w, 1.0), (w, -1.0)), kind)
    n = draw(st.integers(1, 4))
    phases = [(w, 1.0)]
    for _ in range(n):
        phases.append((draw(st.integers(1, 12_000)), draw(st.sampled_from([0.0] + REL + [-r for r in REL]))))
    return PulseShape(tuple(phases), kind)


LIMIT_SPECS = [
    ("max", "current", "mA", (1, 200)), ("min", "current", "mA", (1, 100)),
    ("max", "frequency", "Hz", (1, 1500)), ("min", "frequency", "Hz", (1, 100)),
    ("max", "pulse width", "us", (5, 20_000)), ("min", "pulse width", "us", (1, 500)),
    ("max", "charge", "uC", (1, 200)), ("max", "voltage", "V", (1, 100)),
    ("max", "duration", "min", (1, 2000)), ("max", "channels", None, (1, 12)),
]


@st.composite
def limits(draw):
    out = []
    for bound, q, unit, (lo, hi) in draw(st.lists(st.sampled_from(LIMIT_SPECS), max_size=3, unique=True)):
        out.append(LimitValue(bound, q, Quantity.of(draw(st.integers(lo, hi)), unit)))
    if draw(st.booleans()):
        out.append(LimitValue("max", "density", Quantity.of(draw(st.integers(1, 40)), None)))  # mA/cm²
    return tuple(out)


@st.composite
def sessions(draw):
    n = draw(st.integers(1, 3))
    uses = []
    for i in range(n):
        areas = [F(draw(st.integers(5, 2000)), 10), F(draw(st.integers(5, 2000)), 10)]
        uses.append(ChannelUse(
            channel=f"c{i}", number=draw(st.integers(1, 9)),
            amplitude_ua=F(draw(st.integers(0, 150_000))),
            frequency_hz=F(draw(st.integers(1, 12_000)), 10),
            shape=draw(shapes()),
            electrodes=(ElectrodeInfo("a", areas[0]), ElectrodeInfo("b", areas[1])) if draw(st.booleans()) else (),
            ramp_up_us=draw(st.sampled_from([0, 1_000_000])), on_us=10_000_000))
    return ResolvedSession(session=1, week=1, duration_us=draw(st.integers(1, 30 * 3600)) * 10**6,
                           uses=tuple(uses), trains=(), shapes=(), channels=(), limits=draw(limits()),
                           allow_monophasic=draw(st.booleans()))


class Oracle:
    """docs/safety.md written out plainly in floats; ``near`` collects (value, threshold) pairs to skip."""

    def __init__(self):
        self.near = []
        self.codes = set()

    def cmp(self, code, value, threshold, above=True):
        self.near.append((value, threshold))
        if (value > threshold) if above else (value < threshold):
            self.codes.add(code)

    def ambiguous(self):
        return any(abs(v - t) <= 1e-6 * max(abs(t), 1e-9) for v, t in self.near)


def oracle(s: ResolvedSession) -> Oracle:
    o = Oracle()
    numbers = set()
    for u in s.uses:
        a = float(u.amplitude_ua)          # µA
        f = float(u.frequency_hz)          # Hz
        ph = [(d, float(r)) for d, r in u.shape.phases]
        numbers.add(u.number)
        net = abs(sum(d * r for d, r in ph))
        if not s.allow_monophasic:
            o.cmp("S001", net, 0.01 * abs(ph[0][1]) * ph[0][0])
        peak = a * max([1.0] + [abs(r) for _, r in ph])
        o.cmp("S002", peak, P.max_current_ua)
        cur = [d for d, r in ph if r != 0]
        device_cause = min(cur) < P.min_phase_us or max(cur) > P.max_phase_us or f > P.max_rate_hz
        if min(cur) < P.min_phase_us or max(cur) > P.max_phase_us:
            o.codes.add("S003")
        o.cmp("S004", f, P.max_rate_hz)
        if u.number > P.channels:
            o.codes.add("S005")
        i_amp = a * 1e-6
        energy_mj = sum((i_amp * r) ** 2 * 500 * d * 1e-6 for d, r in ph) * 1000
        o.cmp("S008", energy_mj, 300)
        irms_ma = (a / 1000) * math.sqrt(f * sum(d * 1e-6 * r * r for d, r in ph))
        q_uc = max(a * abs(r) * d * 1e-6 for d, r in ph)
        v = peak * 1e-6 * 500
        if u.electrodes:
            area = float(min(e.area_cm2 for e in u.electrodes))
            o.cmp("S009", irms_ma / area, 2)
            o.cmp("S010", (irms_ma / 1000) ** 2 * 500 / area, 0.25)
            if q_uc > 0:
                o.cmp("S011", math.log10(q_uc / area) + math.log10(q_uc), 1.85)
        if u.ramp_up_us == 0:
            o.cmp("S012", a, 10_000)
        if u.shape.duration_us > math.floor(1e6 / f + 1e-9) and not device_cause:
            o.codes.add("S013")   # an overlap caused by a device-limit violation is reported as that one
        # the protocol's limits
        for lim in s.limits:
            val = float(lim.value.value)
            mx = lim.bound == "max"
            if lim.quantity == "current":
                o.cmp("S006", peak if mx else a, val * 1e6, above=mx)
            elif lim.quantity == "frequency":
                o.cmp("S006", f, val, above=mx)
            elif lim.quantity == "pulse width":
                o.cmp("S006", max(cur) if mx else min(cur), val * 1e6, above=mx)
            elif lim.quantity == "charge":
                o.cmp("S006", q_uc, val * 1e6, above=mx)
            elif lim.quantity == "voltage":
                o.cmp("S006", v, val, above=mx)
            elif lim.quantity == "density" and u.electrodes:
                o.cmp("S006", irms_ma / float(min(e.area_cm2 for e in u.electrodes)), val, above=mx)
    if len(numbers) > P.channels:
        o.codes.add("S005")
    o.cmp("S014", s.duration_us, 24 * 3600e6)
    for lim in s.limits:
        val = float(lim.value.value)
        if lim.quantity == "duration":
            o.cmp("S006", s.duration_us * 1e-6, val, above=lim.bound == "max")
        elif lim.quantity == "channels":
            o.cmp("S006", len(numbers), val, above=lim.bound == "max")
        # S016: the limit loosens the device (or the 24 h bound)
        if lim.bound == "max":
            dev = {"current": P.max_current_ua * 1e-6, "frequency": P.max_rate_hz,
                   "pulse width": P.max_phase_us * 1e-6, "channels": P.channels,
                   "voltage": P.max_current_ua * 1e-6 * 500, "duration": 24 * 3600}.get(lim.quantity)
            if dev is not None:
                o.cmp("S016", val, dev)
        elif lim.quantity == "pulse width":
            o.cmp("S016", val, P.min_phase_us * 1e-6, above=False)
    return o


@given(sessions())
def test_codes_match_an_independent_computation(s):
    o = oracle(s)
    assume(not o.ambiguous())
    got = {d.code for d in check_safety(s, schedule=False)}
    assert got == o.codes


@given(sessions())
def test_every_diagnostic_carries_its_rule_severity(s):
    from stimscript.compiler.rules import RULES

    for d in check_safety(s, schedule=False):
        assert d.severity == RULES[d.code].severity
        assert d.message


# --- the exact overlap check --------------------------------------------------------------------------------
@st.composite
def trains(draw):
    n = draw(st.integers(1, 4))
    out = []
    for _ in range(n):
        f = F(draw(st.integers(50, 5000)), 10)   # 5 .. 500 Hz
        period = F(10**6) / f
        on = draw(st.integers(0, 60_000))
        cycle = on + draw(st.integers(0, 20_000))
        up = draw(st.integers(0, on))
        down = draw(st.integers(0, on - up))
        amp = F(draw(st.integers(1, 50)), draw(st.sampled_from([1, 7, 10])))
        out.append(Train(channel=draw(st.integers(1, 3)), start_us=draw(st.integers(0, 50_000)),
                         cycles=draw(st.integers(1, 4)), cycle_us=cycle, on_us=on, ramp_up_us=up,
                         ramp_down_us=down, period_num=period.numerator, period_den=period.denominator,
                         amp_num=amp.numerator, amp_den=amp.denominator, shape=draw(st.integers(0, 1))))
    return out


SHAPES = (PulseShape(((300, 1.0), (300, -1.0))), PulseShape(((1500, 1.0), (200, 0.0), (1500, -1.0))))


@given(trains())
def test_cycle_offsets_equal_the_reference_expander(ts):
    for tr in ts:
        if tr.cycle_us == 0:
            continue
        ref = [t - tr.start_us for t, *_ in expand_py.iter_train(tr, tr.start_us, tr.start_us + tr.cycle_us)]
        assert train_cycle_offsets(tr).tolist() == ref


def brute_force(ts, shared):
    pulses = []
    for i, tr in enumerate(ts):
        for t, ch, _, sh in expand_py.iter_train(tr, 0, 10**9):
            pulses.append((t, t + SHAPES[sh].duration_us, ch))
    same, cross = set(), False
    for i, (a0, a1, ca) in enumerate(pulses):
        for b0, b1, cb in pulses[i + 1:]:
            if a0 < b1 and b0 < a1:
                if ca == cb:
                    same.add(ca)
                elif shared:
                    cross = True
    return same, cross


def _t(channel, start_us, cycles, cycle_us, on_us, period_num, period_den):
    return Train(channel=channel, start_us=start_us, cycles=cycles, cycle_us=cycle_us, on_us=on_us,
                 ramp_up_us=0, ramp_down_us=0, period_num=period_num, period_den=period_den,
                 amp_num=1, amp_den=1, shape=0)


@given(trains(), st.booleans())
# found by this property: a cross-channel overlap in an early window once hid a same-channel overlap later
@example([_t(2, 0, 1, 1, 1, 200000, 1), _t(1, 0, 2, 7300, 1, 200000, 1), _t(1, 600, 1, 7300, 7300, 1000000, 411)],
         True)
def test_overlaps_equal_a_brute_force_expansion(ts, shared):
    ovs = find_overlaps(ts, SHAPES, shared_source=shared, target_pulses=50)  # small windows: exercise carry
    same, cross = brute_force(ts, shared)
    assert {o.channel_first for o in ovs if o.kind == "same"} == same
    assert any(o.kind == "cross" for o in ovs) == cross
    for o in ovs:
        d = SHAPES[ts[o.train_first].shape].duration_us
        assert o.t_first <= o.t_second < o.t_first + d
        assert (o.channel_first == o.channel_second) == (o.kind == "same")
