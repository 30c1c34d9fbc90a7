"""Back-to-back runtime suite, parametrised over devices (loopback, usb + LoopbackBackend).

Re-run against hardware with STIMSCRIPT_TEST_DEVICES=usb (tests that need the emulator's view of the
output skip). Virtual clock throughout: no sleeps.
"""
from __future__ import annotations

import numpy as np
import pytest

import stimscript
from stimscript.compiler.ir import PULSE_DTYPE, ChannelInfo, PulseShape, Segment, Train
from stimscript.compiler.schedule import Schedule
from stimscript.errors import DriverError, SafetyError
from stimscript.runtime import SessionObserver, SessionController, VirtualClock
from stimscript.runtime.testing import nmes_schedule, open_test_device, device_kinds

KINDS = device_kinds()
PERIOD = 20_000  # 50 Hz


@pytest.fixture(params=KINDS)
def dev(request):
    d = open_test_device(request.param)
    yield d
    d.close()


def emulator_of(dev):
    try:
        return dev.emulator
    except AttributeError:
        pytest.skip("real hardware: the delivered output cannot be observed")


@pytest.fixture(scope="module")
def sched():
    s = nmes_schedule(channels=8, seconds=45, on_s=8, off_s=7, ramp_s=1.5)
    s.pulses  # materialise once
    return s


def run(s, dev, tmp_path, **kw):
    kw.setdefault("db", tmp_path / "r.sqlite")
    return stimscript.run(s, device=dev, realtime=False, **kw)


def test_output_equals_schedule_bit_for_bit(dev, sched, tmp_path):
    rec = run(sched, dev, tmp_path, keep_acks=True)
    assert rec.end_reason == "completed"
    out = emulator_of(dev).output
    assert out.dtype == PULSE_DTYPE
    assert np.array_equal(out, sched.pulses)
    counts = {c: int(np.count_nonzero(sched.pulses["channel"] == c)) for c in range(1, 9)}
    assert rec.delivered == counts
    assert rec.peak_ua == {c: int(sched.pulses["amplitude_ua"][sched.pulses["channel"] == c].max()) for c in counts}
    # every pulse acknowledged exactly once, with its device timestamp
    acks = rec.acknowledged
    assert np.array_equal(np.sort(acks["index"]), np.arange(len(sched.pulses)))
    assert np.array_equal(acks["t_us"] - rec.epoch_us, sched.pulses["t_us"])
    assert rec.underruns == 0 and rec.elapsed_us == sched.duration_us


def test_record_written_with_counts(dev, sched, tmp_path):
    rec = run(sched, dev, tmp_path)
    from stimscript.runtime.records import RecordStore

    with RecordStore(tmp_path / "r.sqlite") as store:
        back = store.get(rec.id)
    assert back.end_reason == "completed" and back.delivered == rec.delivered and back.peak_ua == rec.peak_ua
    assert back.title == sched.title and back.device == dev.name and back.ended_at


def test_ordinary_schedule_materialised_lazily_and_odd_rates():
    # a 3-channel schedule with a non-integer period (30 Hz) and a custom 3-phase shape, never materialised
    shape = PulseShape(((200, 1.0), (50, 0.0), (800, -0.25)))
    trains = [Train(1, 0, 3, 2_000_000, 1_500_000, 500_000, 300_000, 1_000_000, 30, 33_333, 1, 0),
              Train(2, 250_000, 2, 2_500_000, 2_000_000, 0, 0, 1_000_000, 7, 20_000, 3, 0),
              Train(5, 0, 1, 6_000_000, 6_000_000, 1_000_000, 1_000_000, 1_000_000, 1000, 5_000, 1, 0)]
    s = Schedule.from_trains(trains, [shape])
    ref = Schedule.from_trains(trains, [shape]).pulses
    dev = stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason == "completed"
    assert np.array_equal(dev.emulator.output, ref)
    assert "pulses" not in s.__dict__  # streamed with blocks()


def test_intensity_change_reaches_output_within_one_period_and_is_clamped(dev, tmp_path):
    s = nmes_schedule(channels=2, seconds=20, on_s=20, off_s=0, ramp_s=0, base_ua=40_000, step_ua=0)
    ctl = SessionController(intensity_step_ua=2_000, slew_ua_per_s=100_000)
    t_up = 3_000_000 + 7_000           # between two pulses
    ctl.at(t_up, "intensity_up")
    ctl.at(6_000_000 + 1, "set_intensity", "200 mA")   # far above the range: clamped
    rec = run(s, dev, tmp_path, controller=ctl, param_ranges={"intensity": ("10 mA", "50 mA")})
    assert rec.end_reason == "completed"
    out = emulator_of(dev).output
    ch1 = out[out["channel"] == 1]
    before = ch1[ch1["t_us"] < t_up]
    after = ch1[ch1["t_us"] >= t_up]
    assert np.all(before["amplitude_ua"] == 40_000)
    assert after["t_us"][0] - t_up <= PERIOD and after["amplitude_ua"][0] == 42_000
    late = ch1[ch1["t_us"] >= 7_000_000]
    assert np.all(late["amplitude_ua"] == 50_000)        # the range's top, never more
    assert rec.peak_ua[1] == 50_000
    # slew limit: 100 mA/s -> at most 2 mA per 20 ms
    steps = np.diff(ch1["amplitude_ua"].astype(np.int64))
    assert steps.max() <= 2_000


def test_intensity_down_and_without_range_cannot_exceed_compiled(dev, tmp_path):
    s = nmes_schedule(channels=1, seconds=6, on_s=6, off_s=0, ramp_s=0, base_ua=30_000)
    ctl = SessionController(intensity_step_ua=5_000, slew_ua_per_s=1_000_000)
    ctl.at(1_000_000, "intensity_down")
    ctl.at(2_000_000, "intensity_up")
    ctl.at(2_500_000, "intensity_up")   # would be 35 mA: clamped at the compiled 30 mA without a range
    rec = run(s, dev, tmp_path, controller=ctl)
    out = emulator_of(dev).output
    a = out["amplitude_ua"]
    t = out["t_us"]
    assert np.all(a[(t > 1_020_000) & (t < 2_000_000)] == 25_000)
    assert np.all(a[t > 2_020_000] == 30_000)
    assert rec.peak_ua[1] == 30_000


def test_emergency_stop_no_output_after_one_period(dev, tmp_path, sched):
    ctl = SessionController()
    t_stop = 12_345_678
    ctl.at(t_stop, "estop")
    rec = run(sched, dev, tmp_path, controller=ctl)
    assert rec.end_reason == "emergency_stop"
    out = emulator_of(dev).output
    assert len(out) and out["t_us"].max() <= t_stop
    assert np.array_equal(out, sched.pulses[sched.pulses["t_us"] <= t_stop])
    emu = emulator_of(dev)
    assert emu.queue_level == 0 and not emu.output_on
    assert rec.delivered == {c: int(np.count_nonzero(out["channel"] == c)) for c in range(1, 9)}


def test_emergency_stop_from_the_controller_object_directly(dev, tmp_path):
    s = nmes_schedule(channels=2, seconds=10, on_s=10, off_s=0, ramp_s=0)
    ctl = SessionController()
    seen = []

    def on_event(ev):
        if ev.kind == "progress" and ev.t_us >= 3_000_000 and not seen:
            seen.append(ev.t_us)
            ctl.emergency_stop()      # as a UI thread would

    rec = run(s, dev, tmp_path, controller=ctl, on_event=on_event)
    assert rec.end_reason == "emergency_stop"
    out = emulator_of(dev).output
    assert out["t_us"].max() <= seen[0]


def test_stop_ramps_down_within_one_second(dev, tmp_path):
    s = nmes_schedule(channels=3, seconds=20, on_s=20, off_s=0, ramp_s=0.5)
    ctl = SessionController(stop_ramp_ms=1000)
    t_stop = 5_000_000
    ctl.at(t_stop, "stop")
    rec = run(s, dev, tmp_path, controller=ctl)
    assert rec.end_reason == "stopped"
    out = emulator_of(dev).output
    assert out["t_us"].max() < t_stop + 1_000_000
    ramp = out[(out["t_us"] >= t_stop) & (out["channel"] == 1)]
    assert len(ramp) > 10
    assert np.all(np.diff(ramp["amplitude_ua"].astype(int)) <= 0)     # monotonically down
    assert ramp["amplitude_ua"][-1] < 0.05 * 40_000
    before = out[out["t_us"] < t_stop]
    assert np.array_equal(before, s.pulses[s.pulses["t_us"] < t_stop])
    assert emulator_of(dev).queue_level == 0


def test_pause_and_resume_continue_the_schedule(dev, tmp_path):
    s = nmes_schedule(channels=2, seconds=12, on_s=12, off_s=0, ramp_s=0, step_ua=0)
    ctl = SessionController(pause_ramp_ms=500, resume_ramp_ms=1000)
    t_pause, t_resume = 4_000_000, 9_000_000
    ctl.at(t_pause, "pause")
    ctl.at(t_resume, "resume")
    events = []
    rec = run(s, dev, tmp_path, controller=ctl, on_event=lambda e: events.append(e.kind))
    assert rec.end_reason == "completed"
    assert "paused" in events and "resumed" in events
    out = emulator_of(dev).output
    ch = out[out["channel"] == 1]
    # nothing between the end of the pause ramp and the resume
    gap = ch[(ch["t_us"] >= t_pause + 500_000) & (ch["t_us"] < t_resume)]
    assert len(gap) == 0
    down = ch[(ch["t_us"] >= t_pause) & (ch["t_us"] < t_pause + 500_000)]
    assert np.all(np.diff(down["amplitude_ua"].astype(int)) <= 0) and down["amplitude_ua"][-1] < 4_000
    up = ch[(ch["t_us"] >= t_resume) & (ch["t_us"] < t_resume + 1_000_000)]
    assert np.all(np.diff(up["amplitude_ua"].astype(int)) >= 0) and up["amplitude_ua"][0] < 4_000
    assert np.all(ch[ch["t_us"] >= t_resume + 1_000_000]["amplitude_ua"] == 40_000)
    # the schedule's time stood still while paused: the remaining pulses all came, shifted by the pause
    shift = t_resume - (t_pause + 500_000)
    tail = ch[ch["t_us"] >= t_resume]
    ref = s.pulses[(s.pulses["channel"] == 1) & (s.pulses["t_us"] >= t_pause + 500_000)]
    # (the pulse exactly at the resume instant has ramp factor 0, so it is not emitted, like a trapezoid)
    assert np.array_equal(tail["t_us"] - shift, ref["t_us"][1:])
    assert out["t_us"].max() <= s.duration_us + shift


def test_progress_events_segments_and_controller_snapshot(dev, tmp_path):
    s = nmes_schedule(channels=2, seconds=10, on_s=5, off_s=5, ramp_s=0)
    s = Schedule(trains=s.trains, shapes=s.shapes, duration_us=s.duration_us, channels=s.channels,
                 segments=(Segment("warm-up", 0, 5_000_000), Segment("rest", 5_000_000, 10_000_000, "pause")),
                 params=s.params)
    ctl = SessionController()
    evs = []
    rec = run(s, dev, tmp_path, controller=ctl, on_event=evs.append)
    kinds = [e.kind for e in evs]
    assert kinds[0] == "started" and kinds[-1] == "ended" and kinds.count("progress") >= 9
    segs = {e.progress.segment for e in evs if e.kind == "progress"}
    assert segs == {"warm-up", "rest"}
    last = [e for e in evs if e.kind == "progress"][-1].progress
    assert last.remaining_us == s.duration_us - last.elapsed_us
    assert ctl.progress.delivered == rec.delivered
    assert ctl.progress.amplitude_ua[1] == 40_000


def test_schedule_the_device_cannot_play_is_refused(dev, tmp_path):
    s = nmes_schedule(channels=1, seconds=2, on_s=2, off_s=0, ramp_s=0, base_ua=130_000)
    with pytest.raises(SafetyError):
        run(s, dev, tmp_path)
    s = nmes_schedule(channels=9, seconds=2, on_s=2, off_s=0, ramp_s=0, step_ua=0)
    with pytest.raises(SafetyError):
        run(s, dev, tmp_path)


def test_guard_judges_the_peak_phase_current_of_a_hand_built_schedule(tmp_path):
    # 70 mA with a recovery phase at twice the first phase's current: 140 mA flows, above the 120 mA maximum.
    # The compiler refuses this (S002 on the peak phase current); a schedule built by hand must be refused
    # by the runtime's guard before START, not only by the device when the pulse is due.
    shape = PulseShape(((100, 1.0), (50, -2.0)))
    trains = [Train(1, 0, 1, 1_000_000, 1_000_000, 0, 0, 1_000_000, 50, 70_000, 1, 0)]
    dev = stimscript.open_device("loopback", capture=True)
    with pytest.raises(SafetyError, match="S002|140"):
        stimscript.run(Schedule.from_trains(trains, [shape]), device=dev, record=False)
    assert len(dev.emulator.output) == 0


def test_run_by_name_and_by_driver(tmp_path):
    s = nmes_schedule(channels=2, seconds=3, on_s=3, off_s=0, ramp_s=0)
    rec = stimscript.run(s, device="loopback", db=tmp_path / "x.sqlite")
    assert rec.end_reason == "completed" and rec.device == "loopback" and rec.delivered == s.counts()
    from stimscript.drivers.loopback import LoopbackBackend

    rec = stimscript.run(s, device="usb", device_options={"backend": LoopbackBackend(capture=True)}, record=False)
    assert rec.end_reason == "completed" and rec.delivered == s.counts()


def test_real_time_run_on_loopback(tmp_path):
    """Real time, every pulse delivered as scheduled. The session (1.2 s) is longer than the look-ahead, so
    pulses are still streamed while it runs; a 600 ms look-ahead means a host starved for less than that by a
    busy machine still delivers everything on time (a longer stall would end "degraded", a real fault)."""
    s = nmes_schedule(channels=8, seconds=1.2, on_s=1.2, off_s=0, ramp_s=0.1)
    dev = stimscript.open_device("loopback", capture=True)

    class Blocks(SessionObserver):
        def __init__(self):
            self.first_t = []

        def on_sent(self, dispatcher, first_index, sched_pulses, offset):
            self.first_t.append(int(sched_pulses["t_us"][0]))

    blocks = Blocks()
    rec = stimscript.run(s, device=dev, realtime=True, lookahead_ms=600, record=False, observers=[blocks])
    assert rec.end_reason == "completed" and rec.underruns == 0, (rec.end_detail, rec.faults)
    assert np.array_equal(dev.emulator.output, s.pulses)
    assert max(blocks.first_t) >= 600_000          # pulses beyond the look-ahead went out while it ran


def test_virtual_time_needs_an_emulated_device():
    from stimscript.drivers.base import WireDriver

    class Hw(WireDriver):  # a transport with no emulator behind it
        name = "hw"

        def _open_transport(self):
            from stimscript.drivers.emulator import Emulator

            self.emu = Emulator(capture=True)

        def _close_transport(self):
            pass

        def _write(self, data):
            self.emu.host_write(data)

        def _read(self):
            return self.emu.host_read()

    hw = Hw()
    hw.open()
    s = nmes_schedule(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0)
    with pytest.raises(DriverError, match="realtime=True"):
        stimscript.run(s, device=hw, realtime=False, record=False)


def test_virtual_clock_never_sleeps():
    c = VirtualClock()
    c.sleep_until(5_000_000)
    assert c.now_us() == 5_000_000
    c.advance(10)
    assert c.now_us() == 5_000_010
    with pytest.raises(ValueError):
        c.advance(-1)
