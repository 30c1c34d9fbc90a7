"""Live intensity per channel on virtual time: what the emulator delivered equals what the record and its
event log say (rebuilt here independently from the schedule and the logged scale changes), and every request
is answered with what happened."""
from __future__ import annotations

import numpy as np
import pytest

import stimscript
from stimscript.runtime import SessionController
from stimscript.runtime.records import RecordStore
from stimscript.runtime.testing import nmes_schedule, open_test_device

RANGES = {"intensity": ("10 mA", "50 mA")}


def _round_half_even(num: np.ndarray, den: int) -> np.ndarray:
    q, r = np.divmod(num, den)
    up = (2 * r > den) | ((2 * r == den) & (q % 2 == 1))
    return q + up


def rebuilt(sched, rec) -> np.ndarray:
    """The delivered amplitudes as the record says they must be: each scheduled pulse scaled by the scale its
    channel had (per the event log) at the pulse's device time."""
    p = sched.pulses
    amp = p["amplitude_ua"].astype(np.int64)
    ppm = np.full(len(p), 1_000_000, dtype=np.int64)
    for ev in rec.events:
        if ev.kind == "intensity":
            ppm[(p["channel"] == ev.channel) & (p["t_us"] + rec.epoch_us > ev.device_us)] = ev.scale_ppm
    return _round_half_even(amp * ppm, 1_000_000)


def run(sched, ctl, tmp_path, **kw):
    dev = open_test_device("loopback")
    messages = []
    rec = stimscript.run(sched, device=dev, controller=ctl, db=tmp_path / "r.sqlite",
                         on_event=lambda e: messages.append(e.detail) if e.kind == "intensity" and e.detail else None,
                         **kw)
    out = dev.emulator.output.copy()
    dev.close()
    with RecordStore(tmp_path / "r.sqlite") as store:
        back = store.get(rec.id)
    return back, out, messages


def check_output_matches_record(sched, rec, out):
    """Every pulse the emulator delivered is a scheduled pulse at the amplitude the event log implies; pulses
    the log scales to 0 are the only ones missing; counts and peaks agree with the record."""
    p = sched.pulses
    want = rebuilt(sched, rec)
    keep = want > 0
    assert np.array_equal(out["t_us"], p["t_us"][keep]) and np.array_equal(out["channel"], p["channel"][keep])
    assert np.array_equal(out["amplitude_ua"].astype(np.int64), want[keep])
    for ch in rec.delivered:
        mine = out["channel"] == ch
        assert rec.delivered[ch] == int(mine.sum())
        assert rec.peak_ua[ch] == (int(out["amplitude_ua"][mine].max()) if mine.any() else 0)


def test_one_channel_up_leaves_the_others_alone(tmp_path):
    sched = nmes_schedule(channels=2, seconds=6, on_s=6, off_s=0, ramp_s=0, base_ua=40_000, step_ua=1_000)
    sched.pulses
    ctl = SessionController(intensity_step_ua=1_000, slew_ua_per_s=1_000_000)
    ctl.at(2_000_000 + 7_000, "intensity_up", None, None, 1)
    rec, out, messages = run(sched, ctl, tmp_path, param_ranges=RANGES)
    assert messages == ["ch1 40 mA → 41 mA"]
    ups = [e for e in rec.events if e.kind == "intensity"]
    assert [(e.channel, e.old_ua, e.new_ua, e.scale_ppm) for e in ups] == [(1, 40_000, 41_000, 1_025_000)]
    assert 0 <= ups[0].session_us - 2_007_000 < 20_000
    check_output_matches_record(sched, rec, out)
    ch1, ch2 = out[out["channel"] == 1], out[out["channel"] == 2]
    assert set(ch2["amplitude_ua"]) == {41_000}                       # channel 2 (41 mA) untouched
    assert ch1["amplitude_ua"][-1] == 41_000 and ch1["amplitude_ua"][0] == 40_000
    assert rec.channel_ua == {1: 41_000, 2: 41_000} and rec.intensity_ua == {}   # the group no longer agrees


def test_clamps_at_the_top_and_says_so(tmp_path):
    sched = nmes_schedule(channels=1, seconds=5, on_s=5, off_s=0, ramp_s=0, base_ua=40_000)
    ctl = SessionController(intensity_step_ua=1_000, slew_ua_per_s=1_000_000)
    ctl.at(1_000_000, "set_intensity", "48 mA", None, 1)
    ctl.at(2_000_000, "intensity_up", None, 5_000, 1)       # 53 mA asked: 50 mA is the top
    ctl.at(3_000_000, "intensity_up", None, None, 1)        # already at the top: nothing changes
    rec, out, messages = run(sched, ctl, tmp_path, param_ranges=RANGES)
    assert messages == ["ch1 40 mA → 48 mA", "ch1 48 mA → 50 mA (the top of its range)",
                        "ch1 at the top of its range (50 mA)"]
    check_output_matches_record(sched, rec, out)
    assert out["amplitude_ua"].max() == 50_000 and rec.peak_ua == {1: 50_000} and rec.channel_ua == {1: 50_000}
    assert [e.new_ua for e in rec.events if e.kind == "intensity"][-1] == 50_000


def test_lowering_below_the_minimum_down_to_zero_is_allowed_and_noted(tmp_path):
    sched = nmes_schedule(channels=1, seconds=5, on_s=5, off_s=0, ramp_s=0, base_ua=40_000)
    ctl = SessionController(intensity_step_ua=1_000, slew_ua_per_s=1_000_000)
    ctl.at(1_000_000, "intensity_down", None, 35_000, 1)    # 5 mA: below the param minimum of 10 mA
    ctl.at(2_000_000, "intensity_down", None, 10_000, 1)    # 0 mA (not -5)
    ctl.at(3_000_000, "intensity_down", None, None, 1)      # already at 0
    ctl.at(4_000_000, "intensity_up", None, None, 1)        # back up from 0
    rec, out, messages = run(sched, ctl, tmp_path, param_ranges=RANGES)
    assert messages == ["ch1 40 mA → 5 mA, below the intensity minimum 10 mA (noted in the record)",
                        "ch1 5 mA → 0 mA, below the intensity minimum 10 mA (noted in the record)",
                        "ch1 already at 0 mA", "ch1 0 mA → 1 mA, below the intensity minimum 10 mA (noted in the record)"]
    dev = [e for e in rec.events if e.kind == "deviation"]
    assert len(dev) == 1 and dev[0].new_ua == 5_000 and "below the minimum of intensity (10 mA" in dev[0].detail
    check_output_matches_record(sched, rec, out)
    t = out["t_us"]
    assert not np.any((t > 2_100_000) & (t < 4_000_000))      # nothing delivered at 0 mA
    assert set(out["amplitude_ua"][(t > 1_100_000) & (t < 2_000_000)]) == {5_000}
    assert rec.end_reason == "completed" and rec.channel_ua == {1: 1_000}


EXPRESSIONS = """stimscript 1
protocol "Expression amplitudes" { }
param intensity = 40 mA in 10 mA .. 60 mA "tolerated"
param baseline = 20 mA in 10 mA .. 30 mA
param boost = 5 mA in 0 mA .. 10 mA
electrode a 5 cm x 9 cm
electrode b 5 cm x 9 cm
channel quad 1 { site vastus_medialis right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude intensity }
channel hams 2 { site biceps_femoris right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude 80% intensity }
channel glute 3 { site gluteus_maximus right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude baseline + boost }
cycle c { ramp up 1 s; hold 4 s; ramp down 1 s; rest 2 s }
session { repeat 3 { quad, hams, glute: c } }
"""


def test_expression_amplitudes_change_by_their_delivered_amplitude_within_the_checked_envelope(tmp_path):
    proto = stimscript.loads(EXPRESSIONS, name="expr.stim")
    sched = proto.compile()
    sched.pulses
    ranges = {n: proto.safe_range(n) for n in ("intensity", "baseline", "boost")}
    ctl = SessionController(intensity_step_ua=1_000, slew_ua_per_s=1_000_000)
    ctl.at(2_000_000, "intensity_up")                         # every channel, one step of its own amplitude
    ctl.at(9_000_000, "set_intensity", "100 mA", None, 2)     # hams: clamped to 80 % of intensity's top
    ctl.at(17_000_000, "intensity_down", None, 3_000, 3)      # glute can always be lowered
    rec, out, messages = run(sched, ctl, tmp_path, param_ranges=ranges)
    top = ranges["intensity"][1].to_ua()
    hams_top = 32_000 * top // 40_000
    assert messages[:3] == ["quad 40 mA → 41 mA", "hams 32 mA → 33 mA", "glute at the top of its range (25 mA)"]
    assert messages[3] == f"hams 33 mA → {hams_top / 1000:g} mA (the top of its range)"
    assert messages[4] == "glute 25 mA → 22 mA"
    check_output_matches_record(sched, rec, out)
    hams = out[out["channel"] == 2]
    assert hams["amplitude_ua"].max() == hams_top <= 0.8 * top
    assert out[out["channel"] == 3]["amplitude_ua"].max() == 25_000    # never above what was checked
    assert rec.channel_ua == {1: 41_000, 2: hams_top, 3: 22_000}


def test_a_request_for_an_unknown_channel_changes_nothing_and_says_why(tmp_path):
    sched = nmes_schedule(channels=1, seconds=3, on_s=3, off_s=0, ramp_s=0, base_ua=40_000)
    ctl = SessionController()
    ctl.at(1_000_000, "intensity_up", None, None, 5)
    rec, out, messages = run(sched, ctl, tmp_path, param_ranges=RANGES)
    assert messages == ["intensity not changed: channel 5 has no adjustable amplitude (channels: 1)"]
    assert rec.end_reason == "completed" and not [e for e in rec.events if e.kind == "intensity"]
    check_output_matches_record(sched, rec, out)


@pytest.mark.parametrize("key,action", [("q", "stop"), ("\x1b", "stop"), ("s", "stop")])
def test_q_and_esc_stop_like_s(key, action):
    from stimscript.live import KeyHandler

    ctl = SessionController()
    keys = KeyHandler(ctl)
    assert keys.feed(key) == [action]
    assert list(ctl._commands) == [("stop", ())]


def test_keys_select_channels_and_unknown_keys_show_the_help():
    from stimscript.live import KEY_HELP, KeyHandler, LiveState, SessionInfo

    sched = nmes_schedule(channels=2, seconds=3)
    state = LiveState(SessionInfo.from_schedule(sched, "loopback", realtime=True))
    ctl = SessionController()
    keys = KeyHandler(ctl, state)
    assert keys.feed("2+") == ["select", "intensity_up"]
    assert state.selected == (2,) and "ch2: raising by 1 mA" in state.message
    assert keys.feed("a-") == ["select", "intensity_down"]
    assert keys.feed("7") == [] and "there is no channel 7" in state.message
    assert keys.feed("x") == [] and state.message == KEY_HELP
    assert list(ctl._commands) == [("intensity_up", (None, None, (2,))), ("intensity_down", (None, None, None))]
