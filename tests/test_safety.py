"""Unit tests of the safety rules (compiler/safety.py) and their physics (compiler/energy.py).

Sessions are built directly from the model types, no parser needed. Boundary cases are exact: a value
exactly at a threshold passes, the next representable step above it fails.
"""
from __future__ import annotations

import math
from fractions import Fraction as F

import pytest

from stimscript.compiler import energy as E
from stimscript.compiler import expand_py
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.compiler.rules import RULES
from stimscript.compiler.safety import (
    check_safety, check_schedule_overlap, find_overlaps, fmt, train_cycle_offsets,
)
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile
from stimscript.spans import Source, at
from stimscript.units import Quantity

SRC = Source("t.stim", "\n".join(f"line {i}" + " " * 40 for i in range(1, 60)))


def sp(line: int):
    return at(SRC, line, 1, 4)


SPANS = {"channel": sp(10), "electrodes": sp(11), "pulse": sp(12), "frequency": sp(13), "amplitude": sp(14),
         "line": sp(30), "cycle": sp(20)}

# --- the pulse kinds -------------------------------------------------------------------------------
MONO = PulseShape(((250, 1.0),), "monophasic")
BI = PulseShape(((250, 1.0), (250, -1.0)), "biphasic")
BI_GAP = PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), "biphasic")
ASYM4 = PulseShape(((250, 1.0), (50, 0.0), (1000, -0.25)), "asymmetric")
BURST = PulseShape(tuple(p for _ in range(25) for p in ((200, 1.0), (200, -1.0))), "burst")  # 2.5 kHz, 10 ms
DOUBLET = PulseShape(((250, 1.0), (250, -1.0), (4500, 0.0), (250, 1.0), (250, -1.0)), "doublet")
CUSTOM_OK = PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)), "custom")
CUSTOM_BAD = PulseShape(((200, 1.0), (800, -0.2)), "custom")

QUAD = (ElectrodeInfo("prox", F("96.52"), sp(3)), ElectrodeInfo("dist", F("96.52"), sp(4)))


def use(amplitude_ua=40_000, frequency_hz=50, shape=BI, electrodes=QUAD, *, number=1, name="quad",
        ramp_up_us=1_000_000, on_us=10_000_000, spans=None):
    return ChannelUse(name, number, F(amplitude_ua), F(frequency_hz), shape, tuple(electrodes),
                      ramp_up_us=ramp_up_us, on_us=on_us, spans=dict(SPANS if spans is None else spans))


def session(*uses, week=1, duration_us=60_000_000, limits=(), allow_monophasic=False, trains=(), shapes=()):
    return ResolvedSession(session=1, week=week, duration_us=duration_us, uses=tuple(uses), trains=tuple(trains),
                           shapes=tuple(shapes), channels=(), limits=tuple(limits),
                           allow_monophasic=allow_monophasic, session_span=sp(40))


def codes(diags):
    return {d.code for d in diags}


def only(diags, code):
    found = [d for d in diags if d.code == code]
    assert len(found) == 1, [d.render() for d in diags]
    return found[0]


def limit(bound, quantity, number, unit=None, line=50):
    return LimitValue(bound, quantity, Quantity.of(number, unit), sp(line))


# --- energy.py ---------------------------------------------------------------------------------------
def test_rms_formula_of_the_design_example():
    # symmetric biphasic 250 µs at 50 Hz: I_rms = A·sqrt(50·500e-6)
    assert E.rms_current_sq_ma2(40_000, 50, BI) == F(40) ** 2 * 50 * F(500, 10**6)
    assert math.isclose(E.rms_current_ma(40_000, 50, BI), 40 * math.sqrt(50 * 500e-6))


def test_charge_energy_density_values():
    assert E.max_phase_charge_uc(40_000, BI) == 10  # 40 mA × 250 µs
    assert E.max_phase_charge_uc(40_000, ASYM4) == 10  # 10 mA × 1000 µs as well
    assert E.net_charge_uc(40_000, ASYM4) == 0
    assert E.net_charge_ratio(MONO) == 1
    assert E.net_charge_ratio(CUSTOM_BAD) == F(1, 5)
    # 40 mA biphasic 250 µs: (0.04)²·500·500e-6 J = 0.4 mJ
    assert E.energy_per_pulse_mj(40_000, BI) == F(4, 10)
    assert E.power_density_w_cm2(100_000, 100, PulseShape(((500, 1.0), (500, -1.0))), 2) == F(1, 4)
    assert E.peak_voltage_v(120_000) == 60
    assert E.peak_current_ua(10_000, PulseShape(((100, 1.0), (50, -2.0)))) == 20_000
    assert E.shannon_k(10, 1) == pytest.approx(2.0)
    assert not E.shannon_k_exceeds(0, 1)
    assert E.smaller_electrode((ElectrodeInfo("a", F(5)), ElectrodeInfo("b", F(4)))).name == "b"
    m = E.use_metrics(use())
    assert m.area_cm2 == F("96.52") and m.charge_per_phase_uc == 10 and m.shannon_k is not None


def test_fmt_never_shows_the_limit_for_a_value_above_it():
    assert fmt(F(3, 10)) == "0.3"
    assert fmt(2.0004, differ_from=2) == "2.0004"
    assert fmt(F(250001, 10**6), differ_from=F(1, 4)) == "0.250001"
    assert fmt(1234.5678) == "1235"
    assert fmt(F(120)) == "120"


# --- happy path: every pulse kind passes on clinical parameters ----------------------------------
@pytest.mark.parametrize("shape", [BI, BI_GAP, ASYM4, BURST, DOUBLET, CUSTOM_OK], ids=lambda s: s.kind)
def test_balanced_kinds_pass(shape):
    freq = 50 if shape is not BURST else 50
    diags = check_safety(session(use(40_000, freq, shape)))
    assert [d for d in diags if d.is_error] == []


# --- S001 net charge ---------------------------------------------------------------------------------
def test_s001_monophasic_without_allow_fails_with_numbers():
    d = only(check_safety(session(use(40_000, 50, MONO))), "S001")
    assert d.severity == "error" and d.span == SPANS["pulse"]
    assert "10 µC" in d.message and "100 %" in d.message and "1 %" in d.message
    assert "allow monophasic" in d.hint


def test_s001_monophasic_with_allow_passes():
    assert "S001" not in codes(check_safety(session(use(40_000, 50, MONO), allow_monophasic=True)))


def test_s001_custom_unbalanced_fails_balanced_passes():
    assert "S001" in codes(check_safety(session(use(shape=CUSTOM_BAD))))
    assert "S001" not in codes(check_safety(session(use(shape=CUSTOM_OK))))


def test_s001_boundary_one_percent():
    exactly = PulseShape(((100, 1.0), (99, -1.0)))
    above = PulseShape(((100, 1.0), (98, -1.0)))
    decimal = PulseShape(((100, 1.0), (100, -0.99)))  # -0.99 is read as the decimal the user wrote
    assert "S001" not in codes(check_safety(session(use(shape=exactly))))
    assert "S001" not in codes(check_safety(session(use(shape=decimal))))
    d = only(check_safety(session(use(shape=above))), "S001")
    assert "2 %" in d.message


# --- S002–S005 device profile ---------------------------------------------------------------------
def test_s002_amplitude_boundary():
    assert "S002" not in codes(check_safety(session(use(120_000))))
    d = only(check_safety(session(use(120_001))), "S002")
    assert "120.001 mA" in d.message and "120 mA" in d.message and d.span == SPANS["amplitude"]
    assert "S002" in codes(check_safety(session(use(-1))))


def test_s002_peak_of_a_custom_phase_counts():
    shape = PulseShape(((400, 1.0), (200, -2.0)))  # balanced, second phase twice the amplitude
    assert "S002" not in codes(check_safety(session(use(60_000, shape=shape))))
    d = only(check_safety(session(use(60_001, shape=shape))), "S002")
    assert "peak current 120.002 mA" in d.message


def test_s003_phase_duration_boundaries():
    ok_short = PulseShape(((10, 1.0), (10, -1.0)))
    bad_short = PulseShape(((9, 1.0), (9, -1.0)))
    ok_long = PulseShape(((10_000, 1.0), (10_000, -1.0)))
    bad_long = PulseShape(((10_001, 1.0), (10_001, -1.0)))
    gap_long = PulseShape(((250, 1.0), (20_000, 0.0), (250, -1.0)))  # a gap is not a current phase
    for shape in (ok_short, ok_long, gap_long):
        assert "S003" not in codes(check_safety(session(use(shape=shape, frequency_hz=20))))
    d = only(check_safety(session(use(shape=bad_short))), "S003")
    assert "9 µs" in d.message and "10 µs" in d.message and d.span == SPANS["pulse"]
    d = only(check_safety(session(use(shape=bad_long, frequency_hz=10))), "S003")
    assert "10001 µs" in d.message and "10000 µs" in d.message


def test_s004_frequency_boundary():
    assert "S004" not in codes(check_safety(session(use(frequency_hz=1000))))
    d = only(check_safety(session(use(frequency_hz=F(10001, 10)))), "S004")
    assert "1000.1 Hz" in d.message and "1000 Hz" in d.message and d.span == SPANS["frequency"]
    assert "S004" in codes(check_safety(session(use(frequency_hz=0))))


def test_s005_channel_number_and_count():
    assert "S005" not in codes(check_safety(session(use(number=8))))
    d = only(check_safety(session(use(number=9))), "S005")
    assert "9" in d.message and "1 to 8" in d.message and d.span == SPANS["channel"]
    small = DeviceProfile(name="two", channels=2)
    diags = check_safety(session(use(number=1, name="a"), use(number=2, name="b"), use(number=3, name="c")), small)
    msgs = [d.message for d in diags if d.code == "S005"]
    assert any("drives 3 channels" in m for m in msgs) and any("outputs 1 to 2" in m for m in msgs)


# --- S006 protocol limits ----------------------------------------------------------------------------
@pytest.mark.parametrize("lim,u,expect", [
    (("max", "current", 60, "mA"), dict(amplitude_ua=60_000), False),
    (("max", "current", 60, "mA"), dict(amplitude_ua=60_001), True),
    (("min", "current", 20, "mA"), dict(amplitude_ua=19_999), True),
    (("max", "frequency", 50, "Hz"), dict(frequency_hz=50), False),
    (("max", "frequency", 50, "Hz"), dict(frequency_hz=F(5001, 100)), True),
    (("min", "frequency", 20, "Hz"), dict(frequency_hz=10), True),
    (("max", "pulse width", 250, "us"), dict(shape=BI), False),
    (("max", "pulse width", 249, "us"), dict(shape=BI), True),
    (("max", "pulse width", 999, "us"), dict(shape=ASYM4), True),   # longest current phase: 1000 µs
    (("min", "pulse width", 201, "us"), dict(shape=BURST), True),
    (("max", "charge", 10, "uC"), dict(amplitude_ua=40_000), False),
    (("max", "charge", 10, "uC"), dict(amplitude_ua=40_001), True),
    (("max", "voltage", 20, "V"), dict(amplitude_ua=40_000), False),   # 40 mA × 500 Ω = 20 V
    (("max", "voltage", 20, "V"), dict(amplitude_ua=40_001), True),
])
def test_s006_limits_on_uses(lim, u, expect):
    lv = limit(*lim)
    diags = check_safety(session(use(**u), limits=[lv]))
    assert ("S006" in codes(diags)) is expect, [d.render() for d in diags]
    if expect:
        d = only(diags, "S006")
        assert d.related and d.related[0].span == lv.span and "limit" in d.related[0].message
        assert d.span in (SPANS["amplitude"], SPANS["frequency"], SPANS["pulse"])


def test_s006_current_message_and_span():
    d = only(check_safety(session(use(70_000), limits=[limit("max", "current", 60, "mA")])), "S006")
    assert d.message.startswith("current 70 mA of channel `quad` (1) is above the protocol's max current 60 mA")
    assert d.span == SPANS["amplitude"] and d.related[0].span == sp(50)


def test_s006_density_limit():
    # biphasic 1250 µs per phase at 100 Hz: I_rms = A/2 -> 40 mA on 20 cm² is exactly 1 mA/cm²
    shape = PulseShape(((1250, 1.0), (1250, -1.0)))
    pair = (ElectrodeInfo("a", F(20), sp(5)), ElectrodeInfo("b", F(30), sp(6)))
    density = Quantity(F(10), (0, 1, 0, -2))  # 10 A/m² = 1 mA/cm²
    lv = LimitValue("max", "density", density, sp(51))
    assert "S006" not in codes(check_safety(session(use(40_000, 100, shape, pair), limits=[lv])))
    d = only(check_safety(session(use(40_001, 100, shape, pair), limits=[lv])), "S006")
    assert "mA/cm²" in d.message and "`a`" in d.message
    assert [r.span for r in d.related] == [sp(5), sp(51)]


def test_s006_session_duration_and_channels():
    lv = limit("max", "duration", 30, "min")
    assert "S006" not in codes(check_safety(session(use(), duration_us=1800 * 10**6, limits=[lv])))
    d = only(check_safety(session(use(), duration_us=1800 * 10**6 + 1, limits=[lv])), "S006")
    assert "30 min" in d.message and d.span == sp(40)
    lc = limit("max", "channels", 1)
    d = only(check_safety(session(use(number=1, name="a"), use(number=2, name="b", spans={"channel": sp(22)}),
                                  limits=[lc])), "S006")
    assert "2 channels" in d.message and d.span == sp(22)


def test_s006_limit_of_the_wrong_dimension_is_reported_not_ignored():
    d = only(check_safety(session(use(), limits=[limit("max", "current", 60, "ms")])), "S006")
    assert "expects a current" in d.message and "time" in d.message


# --- S016 limits looser than the device --------------------------------------------------------------
@pytest.mark.parametrize("lim,expect", [
    (("max", "current", 120, "mA"), False),
    (("max", "current", "120.01", "mA"), True),
    (("max", "current", 200, "mA"), True),
    (("max", "frequency", 1000, "Hz"), False),
    (("max", "frequency", 2, "kHz"), True),
    (("max", "pulse width", 10, "ms"), False),
    (("max", "pulse width", 20, "ms"), True),
    (("min", "pulse width", 5, "us"), True),
    (("max", "channels", 8, None), False),
    (("max", "channels", 9, None), True),
    (("max", "voltage", 60, "V"), False),
    (("max", "voltage", 61, "V"), True),
    (("max", "duration", 24, "h"), False),
    (("max", "duration", 25, "h"), True),
])
def test_s016(lim, expect):
    lv = limit(*lim)
    diags = check_safety(session(use(), limits=[lv]))
    assert ("S016" in codes(diags)) is expect
    if expect:
        d = only(diags, "S016")
        assert d.span == lv.span and "looser" in d.message and "(week" not in d.message


def test_s016_message_names_the_device_maximum():
    d = only(check_safety(session(use(), limits=[limit("max", "current", 200, "mA")])), "S016")
    assert "200 mA" in d.message and "120 mA" in d.message


# --- S008 energy per pulse ------------------------------------------------------------------------------
LONG = PulseShape(((10_000, 1.0),) * 3 + ((10_000, -1.0),) * 3, "custom")  # 60 ms of full current


def test_s008_energy_boundary():
    # (0.1 A)² × 500 Ω × 0.06 s = 300 mJ exactly
    assert E.energy_per_pulse_mj(100_000, LONG) == 300
    assert "S008" not in codes(check_safety(session(use(100_000, 10, LONG, ()))))
    d = only(check_safety(session(use(100_001, 10, LONG, ()))), "S008")
    assert "300.01 mJ" in d.message and "300 mJ" in d.message and d.span == SPANS["amplitude"]


# --- S009 / S010 / S011 densities ---------------------------------------------------------------------
def test_s010_power_density_boundary():
    shape = PulseShape(((500, 1.0), (500, -1.0)), "biphasic")  # f·Σd = 0.1 at 100 Hz
    pair = (ElectrodeInfo("t1", F(2), sp(5)), ElectrodeInfo("t2", F(50), sp(6)))
    assert "S010" not in codes(check_safety(session(use(100_000, 100, shape, pair))))
    diags = check_safety(session(use(100_001, 100, shape, pair)))
    d = only(diags, "S010")
    assert d.severity == "error"
    assert "power density 0.25001 W/cm² on electrode `t1` (2 cm²) exceeds 0.25 W/cm²" == d.message
    assert d.span == SPANS["amplitude"]
    assert len(d.related) == 1 and d.related[0].span == sp(5) and "`t1`" in d.related[0].message
    assert "at least" in d.hint


def test_s010_uses_the_smaller_electrode():
    shape = PulseShape(((500, 1.0), (500, -1.0)))
    pair = (ElectrodeInfo("big", F(50), sp(5)), ElectrodeInfo("small", F(2), sp(6)))
    d = only(check_safety(session(use(100_001, 100, shape, pair))), "S010")
    assert "`small`" in d.message and d.related[0].span == sp(6)


def test_s009_rms_density_boundary_is_a_warning():
    shape = PulseShape(((1250, 1.0), (1250, -1.0)))  # I_rms = A/2 at 100 Hz
    pair = (ElectrodeInfo("prox", F(10), sp(5)), ElectrodeInfo("dist", F(10), sp(6)))
    assert "S009" not in codes(check_safety(session(use(40_000, 100, shape, pair))))  # exactly 2 mA/cm²
    d = only(check_safety(session(use(40_001, 100, shape, pair))), "S009")
    assert d.severity == "warning"
    assert d.message == "rms current density 2.00005 mA/cm² on electrode `prox` (10 cm²) exceeds 2 mA/cm²"
    assert d.related[0].span == sp(5)


def test_s011_shannon_k_near_boundary():
    shape = PulseShape(((100, 1.0), (100, -1.0)))
    pair = (ElectrodeInfo("e", F(1), sp(5)), ElectrodeInfo("f", F(1), sp(6)))
    # k = 1.85 at Q = sqrt(10^1.85) = 8.41395... µC on 1 cm²
    assert "S011" not in codes(check_safety(session(use(84_139, 50, shape, pair))))
    d = only(check_safety(session(use(84_140, 50, shape, pair))), "S011")
    assert d.severity == "warning" and "1.85" in d.message and "8.414 µC" in d.message
    assert d.related[0].span == sp(5)


def test_week_suffix():
    shape = PulseShape(((1250, 1.0), (1250, -1.0)))
    pair = (ElectrodeInfo("prox", F("96.52"), sp(5)), ElectrodeInfo("dist", F("96.52"), sp(6)))
    d = only(check_safety(session(use(400_000, 100, shape, pair), week=3)), "S009")
    assert d.message.endswith("exceeds 2 mA/cm² (week 3)") and "96.52 cm²" in d.message
    d = only(check_safety(session(use(400_000, 100, shape, pair)), show_week=True), "S009")
    assert d.message.endswith("(week 1)")
    d = only(check_safety(session(use(400_000, 100, shape, pair))), "S009")
    assert "week" not in d.message


# --- S012 abrupt start -----------------------------------------------------------------------------------
def test_s012_threshold_and_ramp():
    assert "S012" not in codes(check_safety(session(use(10_000, ramp_up_us=0))))
    d = only(check_safety(session(use(10_001, ramp_up_us=0))), "S012")
    assert d.severity == "warning" and "10.001 mA" in d.message and "without a ramp" in d.message
    assert d.span == SPANS["line"] and d.related[0].span == SPANS["cycle"]
    assert "S012" not in codes(check_safety(session(use(100_000, ramp_up_us=1))))


# --- S013 overlap ----------------------------------------------------------------------------------------
def test_s013_pulse_longer_than_slot_spacing():
    fits = PulseShape(((10_000, 1.0), (10_000, -1.0)))          # 20 ms at 50 Hz: exactly the spacing
    over = PulseShape(((10_000, 1.0), (1, 0.0), (10_000, -1.0)))  # 20.001 ms
    assert "S013" not in codes(check_safety(session(use(shape=fits, electrodes=()))))
    d = only(check_safety(session(use(shape=over, electrodes=()))), "S013")
    assert "20001 µs" in d.message and "20000 µs" in d.message and d.span == SPANS["pulse"]
    # 33.3 Hz: slot spacing is floor(10^6 / 33.3) = 30030 µs
    ok = PulseShape(((15_015, 1.0), (15_015, -1.0)))
    bad = PulseShape(((15_015, 1.0), (1, 0.0), (15_015, -1.0)))
    roomy = DeviceProfile(max_phase_us=20_000)   # 15 ms phases are beyond the loopback's 10 ms
    assert "S013" not in codes(check_safety(session(use(frequency_hz=F(333, 10), shape=ok, electrodes=())), roomy))
    assert "S013" in codes(check_safety(session(use(frequency_hz=F(333, 10), shape=bad, electrodes=())), roomy))
    # on the loopback the phase is the cause (S003 at the pulse line); the overlap is not reported twice
    found = codes(check_safety(session(use(frequency_hz=F(333, 10), shape=bad, electrodes=()))))
    assert "S003" in found and "S013" not in found


def test_s013_gives_way_to_the_device_rate_limit():
    """2 kHz: the frequency line is the one to change (S004), not the pulse (S013)."""
    short = PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)))
    found = check_safety(session(use(frequency_hz=F(2000), shape=short, electrodes=())))
    assert "S004" in codes(found) and "S013" not in codes(found)
    assert only(found, "S004").span == SPANS["frequency"]


def train(ch, start, *, cycles=1, cycle_us=1_000_000, on_us=1_000_000, up=0, down=0, f=50, amp=40_000,
          shape=0):
    p = F(10**6) / F(f)
    return Train(ch, start, cycles, cycle_us, on_us, up, down, p.numerator, p.denominator, amp, 1, shape)


def test_overlap_shared_source_interleaved_passes_and_colliding_fails():
    shared = DeviceProfile(name="shared", independent_sources=False)
    interleaved = [train(c, (c - 1) * 2500) for c in range(1, 9)]   # 500 µs pulses every 20 ms, 2.5 ms apart
    assert find_overlaps(interleaved, (BI,), shared_source=True) == []
    assert check_schedule_overlap(interleaved, (BI,), shared) == []
    colliding = [train(1, 0), train(2, 400)]
    ovs = find_overlaps(colliding, (BI,), shared_source=True)
    assert [(o.kind, o.t_first, o.t_second, o.channel_first, o.channel_second) for o in ovs] == \
        [("cross", 0, 400, 1, 2)]
    diags = check_schedule_overlap(colliding, (BI,), shared, channel_names={1: "quad", 2: "hams"})
    assert codes(diags) == {"S013"} and "shared current source" in diags[0].message
    assert "`quad`" in diags[0].message and "`hams`" in diags[0].message
    # independent sources: the same trains are fine
    assert check_schedule_overlap(colliding, (BI,), LOOPBACK_PROFILE) == []


def test_overlap_touching_pulses_do_not_overlap():
    assert find_overlaps([train(1, 0), train(2, 500)], (BI,), shared_source=True) == []
    assert find_overlaps([train(1, 0), train(2, 499)], (BI,), shared_source=True) != []


def test_overlap_same_channel_two_trains_any_device():
    ovs = find_overlaps([train(1, 0), train(1, 100)], (BI,), shared_source=False)
    assert [o.kind for o in ovs] == ["same"]


def test_overlap_across_cycles_without_rest():
    # on 10 ms with a 20 ms period: one slot per cycle, cycles back to back every 10 ms; a 15 ms pulse
    long = PulseShape(((7_500, 1.0), (7_500, -1.0)))
    tr = train(1, 0, cycles=5, cycle_us=10_000, on_us=10_000)
    ovs = find_overlaps([tr], (long,), shared_source=False)
    assert ovs and ovs[0].kind == "same" and (ovs[0].t_first, ovs[0].t_second) == (0, 10_000)


def test_overlap_ramped_zero_amplitude_slot_is_not_a_pulse():
    # with a ramp the slot at offset 0 is not emitted (envelope 0), so a neighbour there is no overlap
    a = train(1, 0, cycles=1, cycle_us=1_000_000, on_us=1_000_000, up=500_000)
    b = train(2, 0, cycles=1, cycle_us=10_000, on_us=400)   # one pulse at t = 0 only
    assert find_overlaps([a, b], (BI,), shared_source=True) == []


def test_check_safety_runs_the_train_check_with_line_spans():
    shared = DeviceProfile(name="shared", independent_sources=False)
    u1 = use(name="quad", number=1, spans={**SPANS, "line": sp(31)})
    u2 = use(name="hams", number=2, spans={**SPANS, "line": sp(32)})
    s = session(u1, u2, trains=[train(1, 0), train(2, 400)], shapes=[BI])
    d = only(check_safety(s, shared), "S013")
    assert d.span == sp(32) and d.related[0].span == sp(31)
    assert "S013" not in codes(check_safety(s))  # loopback: independent sources


def test_overlap_check_for_30_min_8_channels_50_hz_finds_none():
    trains = [train(c, (c - 1) * 2500, cycles=120, cycle_us=15_000_000, on_us=10_000_000, up=2_000_000,
                    down=1_000_000) for c in range(1, 9)]
    assert find_overlaps(trains, (BI,), shared_source=True) == []
    continuous = [train(c, (c - 1) * 2500, on_us=1800 * 10**6, cycle_us=1800 * 10**6) for c in range(1, 9)]
    assert find_overlaps(continuous, (BI,), shared_source=True) == []


def test_train_cycle_offsets_match_the_reference_expander():
    for tr in [train(1, 0, on_us=1_000_000, up=300_000, down=200_000, amp=3),
               train(1, 7, cycles=3, cycle_us=2_000_000, on_us=1_500_000, up=1_000_000, f=F(333, 10), amp=40_000),
               train(1, 0, on_us=100_000, f=7, amp=1)]:
        ref = [t for t, *_ in expand_py.iter_train(tr, 0, tr.start_us + tr.cycle_us)]
        assert [tr.start_us + int(o) for o in train_cycle_offsets(tr)] == ref


# --- S014 and session-wide ---------------------------------------------------------------------------------
def test_s014_session_length_boundary():
    day = 24 * 3600 * 10**6
    assert "S014" not in codes(check_safety(session(use(), duration_us=day)))
    d = only(check_safety(session(use(), duration_us=day + 1)), "S014")
    assert "24 h" in d.message and d.span == sp(40)


def test_identical_findings_are_reported_once():
    u = use(40_000, 50, MONO)
    diags = check_safety(session(u, u, u))
    assert [d.code for d in diags].count("S001") == 1
    # a different line overriding the pulse is a separate finding at its own span
    v = use(40_000, 50, MONO, spans={**SPANS, "pulse": sp(33)})
    assert [d.code for d in check_safety(session(u, v))].count("S001") == 2


def test_severity_and_codes_come_from_the_rule_table():
    shape = PulseShape(((500, 1.0), (500, -1.0)))
    pair = (ElectrodeInfo("t1", F(1), sp(5)), ElectrodeInfo("t2", F(1), sp(6)))
    diags = check_safety(session(use(130_000, 100, shape, pair, ramp_up_us=0)))
    assert {"S002", "S009", "S010", "S011", "S012"} <= codes(diags)
    for d in diags:
        assert d.severity == RULES[d.code].severity
        assert d.render()  # renders with source lines


# --- integration through the language, when the checker is available ----------------------------------------
def _loads():
    try:
        import stimscript
        from stimscript.compiler import checker  # noqa: F401
    except Exception:  # noqa: BLE001
        return None
    return getattr(stimscript, "loads", None)


SMALL_ELECTRODES = """stimscript 1

electrode t1 2 cm2
electrode t2 2 cm2

channel ta 1 {
    site tibialis_anterior right
    electrodes t1 -> t2
    pulse biphasic 500 us
    frequency 100 Hz
    amplitude 110 mA
}

cycle c { ramp up 1 s; hold 5 s; ramp down 1 s; rest 10 s }

session {
    repeat 2 { ta: c }
}
"""


def test_integration_small_electrodes_fail_s010_at_the_amplitude_line():
    loads = _loads()
    if loads is None:
        pytest.skip("stimscript.loads (checker) not available yet")
    from stimscript.errors import ProtocolError
    with pytest.raises(ProtocolError) as info:
        loads(SMALL_ELECTRODES, name="small.stim")
    err = info.value
    s010 = [d for d in err.diagnostics if d.code == "S010"]
    assert s010, err.render()
    assert s010[0].span.line == 11  # `amplitude 110 mA`
    assert any(r.span.line == 3 for r in s010[0].related)  # `electrode t1 2 cm2`
    assert "0.3025 W/cm²" in s010[0].message


def test_integration_clean_protocol_passes():
    loads = _loads()
    if loads is None:
        pytest.skip("stimscript.loads (checker) not available yet")
    text = SMALL_ELECTRODES.replace("2 cm2", "45 cm2").replace("110 mA", "40 mA")
    loads(text, name="ok.stim")
