"""Safety decided on delivered pulses: every accepted protocol stays within every limit when measured on its
``sched.pulses`` by the plain computation written out in this file (not the checker's code).

The classes that fooled rules computed from declared parameters: a cycle shorter than one period restarting its
train (1 Hz + hold 1 ms delivers 1 kHz), trains on one channel bunching their pulses, a ramp shorter than one
period (the first delivered pulse is already at full amplitude).
"""
from __future__ import annotations

import math
from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.compiler import expand_py
from stimscript.compiler.ir import PulseShape, Train
from stimscript.compiler.model import ChannelUse, ElectrodeInfo, LimitValue, ResolvedSession
from stimscript.compiler.safety import check_safety
from stimscript.profile import LOOPBACK_PROFILE
from stimscript.spans import Source, at
from stimscript.units import Quantity

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- the independent measurement ---------------------------------------------------------------------------
def phase_weight_us(shape) -> F:
    """Σ duration·(relative amplitude)² of a shape, reading each float as the decimal it prints as."""
    return sum((F(d) * F(repr(float(r))) ** 2 for d, r in shape.phases), F(0))


def measure(pulses, shapes):
    """Per channel: smallest onset spacing (µs), worst Σ amp²·w over onsets in [t, t + 1 s), first amplitude."""
    out = {}
    for ch in sorted(set(int(c) for c in pulses["channel"])):
        rows = pulses[pulses["channel"] == ch]
        t = [int(x) for x in rows["t_us"]]
        w = [int(a) ** 2 * phase_weight_us(shapes[int(s)]) for a, s in zip(rows["amplitude_ua"], rows["shape"])]
        spacing = min((b - a for a, b in zip(t, t[1:])), default=None)
        best = F(0)
        j = 0
        run = F(0)
        for i in range(len(t)):           # two pointers over [t_i, t_i + 1 s)
            while j < len(t) and t[j] < t[i] + 10**6:
                run += w[j]
                j += 1
            best = max(best, run)
            run -= w[i]
        out[ch] = dict(spacing=spacing, window=best, first=int(rows["amplitude_ua"][0]))
    return out


def power_density(window_ua2us: F, area_cm2: F) -> F:
    return window_ua2us * F(1, 10**18) * 500 / area_cm2       # W/cm² at 500 Ω


# --- the three classes, through the language ---------------------------------------------------------------
HEAD = """stimscript 1
param intensity = 40 mA in 10 mA .. 100 mA
electrode a 2 cm x 2 cm
electrode b 5 cm x 5 cm
channel q 1 {{ site tibialis_anterior; electrodes a -> b; pulse biphasic 200 us; frequency {f}; amplitude intensity }}
"""


def _err(text):
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text, name="d.stim")
    return info.value


def test_cycle_shorter_than_one_period_is_judged_on_its_real_rate():
    # 1 Hz with hold 500 us restarts the train every 0.5 ms: 2 kHz delivered
    text = (HEAD.format(f="1 Hz") + "cycle c { hold 500 us }\nsession { repeat 100000 { q: c } }\n").replace(
        "= 40 mA", "= 60 mA")
    err = _err(text)
    d = next(d for d in err.diagnostics if d.code == "S004")
    assert d.span.line == 6 and "500 µs apart" in d.message and "restarts its train" in d.message
    assert any(d.code == "S010" for d in err.diagnostics)
    sched_rate = 2000
    assert f"{sched_rate} Hz" in d.message


def test_cycle_restart_against_the_protocols_max_frequency():
    # 10 Hz with hold 20 ms + rest 0: pulses every 20 ms = 50 Hz, above `max frequency 40 Hz`
    text = (HEAD.format(f="10 Hz") + "limits { max frequency 40 Hz }\ncycle c { hold 20 ms }\n"
            "session { repeat 500 { q: c } }\n")
    err = _err(text)
    d = next(d for d in err.diagnostics if d.code == "S006")
    assert d.span.line == 7  # the cycle
    assert "20000 µs apart" in d.message and "max frequency 40 Hz" in d.message
    # a cycle of one whole period keeps the declared 10 Hz
    stimscript.loads(text.replace("hold 20 ms", "hold 100 ms"), name="ok.stim")


def test_adjacent_blocks_bunch_pulses_at_the_boundary():
    # block 1 ends with a pulse at 0.9995 s (cycle without rest), block 2 starts 0.5 ms later
    text = (HEAD.format(f="1 Hz") + "cycle c { hold 1 s }\ncycle d { hold 1 s }\n"
            "session { repeat 1 { q: c with frequency 2000 Hz } \n repeat 1 { q: d } }\n")
    err = _err(text)
    assert "S004" in err.codes  # the override: 2 kHz declared
    text = (HEAD.format(f="1 Hz") + "cycle c { hold 999600 us }\n"
            "session { repeat 1 { q: c } \n repeat 1 { q: c with frequency 1 Hz } }\n")
    stimscript.loads(text, name="ok.stim")  # 999.6 ms apart: fine


def test_short_ramp_is_no_ramp():
    text = HEAD.format(f="50 Hz") + "cycle c { ramp up 1 ms; hold 5 s; rest 5 s }\nsession { repeat 3 { q: c } }\n"
    proto = stimscript.loads(text, name="r.stim")
    d = next(d for d in proto.warnings if d.code == "S012")
    assert "starts at 40 mA" in d.message and "ramp up delivers 0 pulse(s)" in d.message
    sched = proto.compile()
    assert int(sched.pulses["amplitude_ua"][0]) == 40_000  # what the rule measured
    # a ramp of many periods starts low
    ok = stimscript.loads(text.replace("ramp up 1 ms", "ramp up 2 s"), name="r.stim")
    assert not any(d.code == "S012" for d in ok.warnings)


def test_duty_cycle_counts_the_delivered_second_not_continuous_stimulation():
    # 100 ms bursts of 100 Hz every 10 s: the declared formula would count 100 pulses per second,
    # the worst delivered second holds 10
    text = ("stimscript 1\nelectrode a 2 cm2\nelectrode b 2 cm2\n"
            "channel q 1 { site tibialis_anterior; electrodes a -> b; pulse biphasic 500 us; frequency 100 Hz; "
            "amplitude 110 mA }\ncycle c { ramp up 50 ms; hold 50 ms; rest 9900 ms }\nsession { repeat 3 { q: c } }\n")
    proto = stimscript.loads(text, name="duty.stim")
    m = measure(proto.compile().pulses, proto.compile().shapes)[1]
    assert power_density(m["window"], F(2)) <= F(1, 4)


# --- trains on one channel, directly (interleaving lines) ---------------------------------------------------
SRC = Source("t.stim", "\n".join(f"line {i}" + " " * 40 for i in range(1, 60)))


def sp(line):
    return at(SRC, line, 1, 4)


BI = PulseShape(((200, 1.0), (200, -1.0)), "biphasic")


def resolved(trains, amplitudes, area=F(4), limits=()):
    uses, tu = [], []
    for i, (tr, a) in enumerate(zip(trains, amplitudes)):
        f = F(10**6) / F(tr.period_num, tr.period_den)
        spans = {"channel": sp(10), "amplitude": sp(14), "frequency": sp(13), "pulse": sp(12), "line": sp(30 + i),
                 "cycle": sp(20), "after": sp(40 + i) if tr.start_us else None}
        uses.append(ChannelUse("q", tr.channel, F(a), f, BI, (ElectrodeInfo("a", area, sp(3)),
                                                              ElectrodeInfo("b", F(25), sp(4))),
                               ramp_up_us=tr.ramp_up_us, on_us=tr.on_us, spans=spans))
        tu.append(i)
    return ResolvedSession(session=1, week=1, duration_us=max(t.end_us for t in trains), uses=tuple(uses),
                           trains=tuple(trains), shapes=(BI,), channels=(), limits=tuple(limits),
                           session_span=sp(50), train_uses=tuple(tu))


def train(start, f, amp, *, cycles=1, hold=2_000_000, rest=0, up=0, down=0, channel=1):
    p = F(10**6) / F(f)
    on = up + hold + down
    return Train(channel, start, cycles, on + rest, on, up, down, p.numerator, p.denominator, amp, 1, 0)


def test_two_interleaved_lines_are_reported_at_the_later_lines_after():
    # two 500 Hz trains 1 ms apart on one channel: pulses every 1 ms... then 0.5 ms with the offset
    trs = [train(0, 500, 20_000), train(500, 500, 20_000)]
    diags = check_safety(resolved(trs, [20_000, 20_000]), LOOPBACK_PROFILE)
    d = next(d for d in diags if d.code == "S004")
    assert d.span.line == 41 and "interleave" in d.message and "500 µs apart" in d.message


@st.composite
def channel_trains(draw):
    n = draw(st.integers(1, 3))
    trs = []
    for _ in range(n):
        f = draw(st.sampled_from([1, 2, 5, 10, 20, 33, 50, 100, 250, 500]))
        hold = draw(st.sampled_from([200, 700, 1000, 5000, 20_000, 300_000, 1_500_000]))
        up = draw(st.sampled_from([0, 0, 1000, 30_000, 500_000]))
        rest = draw(st.sampled_from([0, 0, 1000, 100_000, 2_000_000]))
        start = draw(st.integers(0, 3_000_000))
        cycles = draw(st.integers(1, 40))
        amp = draw(st.integers(1_000, 60_000))
        trs.append(train(start, f, amp, cycles=cycles, hold=hold, rest=rest, up=up))
    return trs


@settings(max_examples=120, **SETTINGS)
@given(channel_trains(), st.sampled_from([F(1), F(4), F(20), F(100)]),
       st.sampled_from([None, 40, 100, 300]))
def test_accepted_trains_stay_within_every_limit_on_their_pulses(trs, area, max_f):
    limits = (LimitValue("max", "frequency", Quantity.of(max_f, "Hz"), sp(55)),) if max_f else ()
    res = resolved(trs, [tr.amp_num for tr in trs], area=area, limits=limits)
    diags = check_safety(res, LOOPBACK_PROFILE)
    pulses = expand_py.expand(res.trains, 0, res.duration_us)
    assume(len(pulses) > 0)
    m = measure(pulses, res.shapes)[1]
    errors = {d.code for d in diags if d.is_error}
    warns = {d.code for d in diags if not d.is_error}
    if not errors:
        if m["spacing"] is not None:
            assert m["spacing"] >= 1000                        # 1 kHz device slot rate
            if max_f:
                assert m["spacing"] >= math.floor(F(10**6, max_f))
        assert power_density(m["window"], area) <= F(1, 4)
    # the measured breaches are always reported, errors or not
    if m["spacing"] is not None and m["spacing"] < 1000:
        assert "S004" in errors
    if power_density(m["window"], area) > F(1, 4):
        assert "S010" in errors
    if m["window"] * F(1, 10**12) > (2 * area) ** 2:
        assert "S009" in warns
    if m["first"] > 10_000:
        assert "S012" in warns


# --- random protocols through the language -----------------------------------------------------------------
@st.composite
def protocols(draw):
    f = draw(st.sampled_from(["1 Hz", "5 Hz", "20 Hz", "50 Hz", "100 Hz", "400 Hz"]))
    amp = draw(st.integers(5, 90))
    area = draw(st.sampled_from(["1 cm2", "4 cm2", "25 cm2", "90 cm2"]))
    hold = draw(st.sampled_from(["300 us", "1 ms", "3 ms", "20 ms", "400 ms", "2 s"]))
    up = draw(st.sampled_from(["0 s", "1 ms", "30 ms", "1 s"]))
    rest = draw(st.sampled_from(["0 s", "1 ms", "2 s"]))
    ov = draw(st.sampled_from(["", " with frequency 250 Hz", " with frequency 2 Hz", " with amplitude 50% intensity"]))
    lim = draw(st.sampled_from(["", "limits { max frequency 80 Hz }\n"]))
    n = draw(st.integers(1, 3))
    blocks = []
    for i in range(n):
        if draw(st.booleans()):
            blocks.append(f"repeat {draw(st.integers(1, 30))} {{ q: c{ov if i % 2 else ''} }}")
        else:
            blocks.append(f"for {draw(st.sampled_from(['50 ms', '1 s', '3 s']))} {{ q: c{ov if i % 2 == 0 else ''} "
                          f"after {draw(st.sampled_from(['0 s', '1 ms', '10 ms']))} }}")
    text = (f"stimscript 1\nparam intensity = {amp} mA in 1 mA .. 100 mA\nelectrode a {area}\nelectrode b 90 cm2\n"
            f"channel q 1 {{ site tibialis_anterior; electrodes a -> b; pulse biphasic 200 us; frequency {f}; "
            f"amplitude intensity }}\n{lim}cycle c {{ ramp up {up}; hold {hold}; rest {rest} }}\n"
            "session {\n" + "\n".join(blocks) + "\n}\n")
    return text, F(Quantity.of(1, None).value) * F(area.split()[0]), bool(lim)


@settings(max_examples=80, **SETTINGS)
@given(protocols())
def test_accepted_protocols_stay_within_every_limit_on_their_pulses(case):
    text, area, limited = case
    try:
        proto = stimscript.loads(text, name="p.stim")
    except stimscript.ProtocolError as err:
        assert err.diagnostics and "Traceback" not in err.render()
        return
    sched = proto.compile()
    pulses = sched.pulses
    assume(len(pulses) > 0)
    m = measure(pulses, sched.shapes)[1]
    if m["spacing"] is not None:
        assert m["spacing"] >= 1000
        if limited:
            assert m["spacing"] >= 12_500
    assert power_density(m["window"], area) <= F(1, 4)
    if m["first"] > 10_000:
        assert any(w.code == "S012" for w in proto.warnings)


@settings(max_examples=40, **SETTINGS)
@given(st.integers(5, 40), st.sampled_from(["20 Hz", "35 Hz", "50 Hz"]), st.sampled_from(["1 s", "2 s", "3 s"]),
       st.integers(2, 12), st.integers(0, 30))
def test_clearly_safe_protocols_stay_accepted(amp, f, up, hold, rest):
    text = ("stimscript 1\nelectrode a 5 cm x 9 cm\nelectrode b 5 cm x 9 cm\n"
            f"channel q 1 {{ site vastus_medialis; electrodes a -> b; pulse biphasic 300 us; frequency {f}; "
            f"amplitude {amp} mA }}\ncycle c {{ ramp up {up}; hold {hold} s; ramp down 1 s; rest {rest} s }}\n"
            "session { repeat 10 { q: c } }\n")
    proto = stimscript.loads(text, name="safe.stim")
    assert not any(w.code in ("S009", "S012") for w in proto.warnings)
