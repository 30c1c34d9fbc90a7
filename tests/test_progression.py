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


# --- bounded phases, checked against an independent model of the rules -----------------------------
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

PHASES = '''protocol "phases" {
    plan 1 session per week, {weeks} weeks
}
param intensity = {i0} mA in 1 mA .. 100 mA
electrode a 5 cm x 9 cm
electrode b 5 cm x 9 cm
channel quad 1 {
    site vastus_medialis right
    electrodes a -> b
    pulse biphasic 200 us
    frequency 10 Hz
    amplitude intensity
}
cycle c { ramp up 1 s; hold {h0} s; rest 2 s }
session {
    repeat 2 { quad: c }
}
progression {
{prog}
}
'''


def _round_half_even(x: Fraction) -> int:
    return round(Fraction(x))   # Fraction rounds half to even


def _cycle_pulses(ramp_up_s, hold_s, freq_hz, amp_ma) -> int:
    """Pulses of one cycle, counted slot by slot from the language reference's rule (not the compiler's)."""
    on_us = (ramp_up_s + hold_s) * 10**6
    amp_ua = amp_ma * 1000
    n, k = 0, 0
    while True:
        t = _round_half_even(Fraction(k * 10**6, freq_hz))
        if t >= on_us:
            return n
        env = Fraction(t, ramp_up_s * 10**6) if ramp_up_s and t < ramp_up_s * 10**6 else Fraction(1)
        if _round_half_even(amp_ua * env) != 0:
            n += 1
        k += 1


def _model(weeks, start, items):
    """Week -> {target: value}: declared values; `every week` k-1 times (caps each step); then the
    week blocks whose range holds k, in source order. Items: ("every", assigns) | (first, last, assigns),
    last None = to the end; assigns: (target, op, value, cap)."""
    def apply(vals, assigns):
        for target, op, value, cap in assigns:
            v = value if op == "=" else vals[target] + value if op == "+=" else vals[target] - value
            if cap is not None:
                kind, bound = cap
                v = min(v, bound) if kind == "up" else max(v, bound)
            vals[target] = v
    out = {}
    for k in range(1, weeks + 1):
        vals = dict(start)
        for _ in range(k - 1):
            for item in items:
                if item[0] == "every":
                    apply(vals, item[1])
        for item in items:
            if item[0] != "every" and item[0] <= k and (item[1] is None or k <= item[1]):
                apply(vals, item[2])
        out[k] = vals
    return out


def _text(items):
    unit = {"intensity": "mA", "c.hold": "s"}
    out = []
    for item in items:
        assigns = item[1] if item[0] == "every" else item[2]
        body = "; ".join(f"{t} {op} {v} {unit[t]}" + (f" {cap[0]} to {cap[1]} {unit[t]}" if cap else "")
                         for t, op, v, cap in assigns)
        if item[0] == "every":
            head = "every week"
        else:
            first, last = item[0], item[1]
            head = f"week {first}.." if last is None else f"week {first}" if first == last else f"week {first}..{last}"
        out.append(f"    {head} {{ {body} }}")
    return "\n".join(out)


def _check_against_model(weeks, i0, h0, items):
    proto = stimscript.loads(PHASES.replace("{weeks}", str(weeks)).replace("{i0}", str(i0))
                             .replace("{h0}", str(h0)).replace("{prog}", _text(items)))
    model = _model(weeks, {"intensity": i0, "c.hold": h0}, items)
    for k in range(1, weeks + 1):
        sched = proto.compile(session=k)
        want = model[k]
        assert sched.params["intensity"] == Quantity.of(want["intensity"], "mA"), k
        assert sched.duration_us == 2 * (1 + want["c.hold"] + 2) * 10**6, k
        assert sched.counts()[1] == 2 * _cycle_pulses(1, want["c.hold"], 10, want["intensity"]), k
    return model


def test_bounded_open_and_single_weeks_with_caps():
    items = [("every", [("intensity", "+=", 5, ("up", 40)), ("c.hold", "+=", 1, ("up", 6))]),
             (2, 2, [("c.hold", "=", 10, None)]),                 # week 2 only
             (4, 5, [("intensity", "-=", 10, None)]),             # a deload in weeks 4-5
             (6, None, [("c.hold", "+=", 2, None)])]              # thereafter: 2 s more than the accumulation
    model = _check_against_model(8, 30, 3, items)
    # spot values written out by hand: the model itself is checked too
    assert [model[k]["intensity"] for k in range(1, 9)] == [30, 35, 40, 30, 30, 40, 40, 40]
    assert [model[k]["c.hold"] for k in range(1, 9)] == [3, 10, 5, 6, 6, 8, 8, 8]


def test_a_week_block_never_changes_another_week():
    """`+=` in a range adds once in each week of the range, against that week's value (no accumulation)."""
    items = [(2, 4, [("intensity", "+=", 10, None)])]
    model = _check_against_model(5, 30, 3, items)
    assert [model[k]["intensity"] for k in range(1, 6)] == [30, 40, 40, 40, 30]


def test_overlapping_blocks_apply_in_source_order():
    items = [(1, None, [("intensity", "=", 50, None)]), (3, 3, [("intensity", "+=", 5, None)]),
             (2, 3, [("intensity", "-=", 20, None)])]
    model = _check_against_model(4, 30, 3, items)
    assert [model[k]["intensity"] for k in range(1, 5)] == [50, 30, 35, 50]


_assign = st.one_of(
    st.tuples(st.just("intensity"), st.sampled_from(["=", "+=", "-="]), st.integers(0, 20),
              st.none() | st.tuples(st.sampled_from(["up", "down"]), st.integers(5, 60))),
    st.tuples(st.just("c.hold"), st.sampled_from(["=", "+=", "-="]), st.integers(0, 3),
              st.none() | st.tuples(st.sampled_from(["up", "down"]), st.integers(1, 6))),
)


@st.composite
def _progressions(draw):
    weeks = draw(st.integers(1, 6))
    items = []
    for _ in range(draw(st.integers(0, 4))):
        assigns = draw(st.lists(_assign, min_size=1, max_size=3))
        if draw(st.booleans()):
            items.append(("every", assigns))
        else:
            first = draw(st.integers(1, weeks))
            last = draw(st.sampled_from(["one", "range", "open"]))
            last = first if last == "one" else None if last == "open" else draw(st.integers(first, weeks))
            items.append((first, last, assigns))
    return weeks, draw(st.integers(10, 40)), draw(st.integers(1, 4)), items


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_progressions())
def test_any_progression_matches_the_model(case):
    weeks, i0, h0, items = case
    model = _model(weeks, {"intensity": i0, "c.hold": h0}, items)
    # only protocols that stay valid: intensity within its range, a hold of at least 1 s
    assume(all(1 <= v["intensity"] <= 100 and v["c.hold"] >= 1 for v in model.values()))
    _check_against_model(weeks, i0, h0, items)


def test_open_range_from_week_one_and_without_plan():
    items = [(1, None, [("intensity", "=", 45, None)])]
    assert _check_against_model(3, 30, 3, items)[3]["intensity"] == 45
    text = PHASES.replace("    plan 1 session per week, {weeks} weeks\n", "").replace("{i0}", "30") \
        .replace("{h0}", "3").replace("{prog}", "    week 1.. { intensity = 45 mA }")
    with pytest.raises(stimscript.ProtocolError) as info:
        stimscript.loads(text)
    assert info.value.code == "E408" and "no `plan`" in str(info.value)
