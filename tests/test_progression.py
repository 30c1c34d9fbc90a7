"""Plans and progressions: week mapping, every-week increments with caps, ranges, overrides."""
from fractions import Fraction

import pytest

import stimscript
from stimscript.units import Quantity

BASE = '''protocol "p" {
    plan {plan}
}
param intensity = 30 mA in 10 mA .. 80 mA
param reps = 5 in 1 .. 20
electrode a 5 cm x 9 cm
electrode b 5 cm x 9 cm
channel quad 1 {
    site quadriceps right
    electrodes a -> b
    pulse biphasic 300 us
    frequency 50 Hz
    amplitude intensity
}
cycle c { hold 2 s; rest 8 s }
session {
    repeat reps { quad: c }
}
progression {
{prog}
}
'''


def make(prog, plan="1 session per week, 6 weeks"):
    return stimscript.loads(BASE.replace("{plan}", plan).replace("{prog}", prog))


def test_week_mapping_per_day_and_per_week():
    per_day = make("", plan="2 sessions per day, 6 weeks")
    assert per_day.plan.sessions_per_week == 14 and per_day.plan.total_sessions == 84
    assert [per_day.compile(session=s).week for s in (1, 14, 15, 84)] == [1, 1, 2, 6]
    per_week = make("", plan="3 sessions per week, 4 weeks")
    assert per_week.plan.total_sessions == 12 and list(per_week.sessions()) == list(range(1, 13))
    assert [per_week.compile(session=s).week for s in (1, 3, 4, 12)] == [1, 1, 2, 4]


def test_every_week_with_cap_and_week_blocks():
    proto = make("    every week { intensity += 15 mA up to 70 mA }\n    week 3..4 { c.hold = 4 s; reps = 8 }\n"
                 "    week 6 { quad.frequency = 25 Hz }")
    got = {}
    for s in range(1, 7):
        sched = proto.compile(session=s)
        got[s] = (sched.params["intensity"], sched.params["reps"].value, sched.counts()[1], sched.channels[0].frequency_hz)
    mA = lambda x: Quantity.of(x, "mA")
    assert got[1] == (mA(30), 5, 5 * 100, 50)
    assert got[2] == (mA(45), 5, 5 * 100, 50)
    assert got[3] == (mA(60), 8, 8 * 200, 50)       # week 3: hold 4 s -> 200 pulses, 8 reps
    assert got[4] == (mA(70), 8, 8 * 200, 50)       # capped at 70 mA
    assert got[5] == (mA(70), 5, 5 * 100, 50)       # the block is bounded: week 5 is back to the declared values
    assert got[6] == (mA(70), 5, 5 * 50, 25)        # 25 Hz: 2 s on -> 50 pulses
    assert proto.compile(session=4).trains[0].amp_num == 70_000


def test_down_to_and_minus():
    proto = make("    every week { c.rest -= 3 s down to 2 s }")
    durations = [proto.compile(session=s).duration_us for s in range(1, 5)]
    assert durations == [5 * 10_000_000, 5 * 7_000_000, 5 * 4_000_000, 5 * 4_000_000]


def test_progression_beyond_range_names_the_week():
    with pytest.raises(stimscript.SafetyError) as info:
        make("    every week { intensity += 11 mA }", plan="2 sessions per day, 6 weeks")
    err = info.value
    assert err.code == "S007" and err.codes == ["S007"]    # reported once, for the first failing week
    assert "in week 6 (sessions 71–84): intensity 85 mA is above the range 10 mA .. 80 mA" in str(err)
    assert make("    every week { intensity += 10 mA }", plan="2 sessions per day, 6 weeks")  # 80 mA: fine


def test_channel_amplitude_assignment_follows_param():
    proto = make("    week 2..6 { quad.amplitude = 50% intensity }\n    every week { intensity += 10 mA up to 80 mA }")
    s2 = proto.compile(session=2)
    assert s2.channels[0].amplitude_ua == 20_000 and s2.channels[0].param == "intensity"
    assert proto.compile(session=3).channels[0].amplitude_ua == 25_000
    # an explicit override wins over the progression for that param, and feeds the expression
    s3 = proto.compile(session=3, params={"intensity": "60 mA"})
    assert s3.params["intensity"] == Quantity.of(60, "mA") and s3.channels[0].amplitude_ua == 30_000


def test_override_beats_progression_for_that_param_only():
    proto = make("    every week { intensity += 5 mA; reps += 1 }")
    sched = proto.compile(session=4, params={"intensity": Quantity.of(20, "mA")})
    assert sched.params["intensity"] == Quantity.of(20, "mA")
    assert sched.params["reps"] == Quantity(Fraction(8))
    assert sched.counts()[1] == 8 * 100


def test_progression_weeks_are_resolved_once_each():
    proto = make("    week 2.. { intensity = 40 mA }", plan="1 session per day, 6 weeks")
    assert proto.compile(session=7).params["intensity"] == Quantity.of(30, "mA")
    assert proto.compile(session=8).params["intensity"] == Quantity.of(40, "mA")
    assert proto.compile(session=42).params["intensity"] == Quantity.of(40, "mA")
    assert proto.compile(session=42).session == 42


def test_no_plan_only_session_one():
    text = BASE.replace("    plan {plan}\n", "").replace("{prog}", "")
    proto = stimscript.loads(text)
    assert proto.plan is None and list(proto.sessions()) == [1]
    assert proto.compile().week == 1
    with pytest.raises(stimscript.PlanError, match="S015"):
        proto.compile(session=2)


def test_progression_week_without_plan_warns():
    text = BASE.replace("    plan {plan}\n", "").replace("{prog}", "week 2 { intensity = 40 mA }")
    proto = stimscript.loads(text)
    assert [w.code for w in proto.warnings if w.code.startswith("W")] == ["W408"]


def test_limits_checked_in_every_week():
    proto_text = BASE.replace("{plan}", "1 session per week, 6 weeks").replace(
        "{prog}", "    every week { intensity += 5 mA up to 80 mA }") + "limits { max current 50 mA }\n"
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(proto_text)
    assert "week 6" in str(info.value)
