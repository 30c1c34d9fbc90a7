"""The virtual-time traffic schedule: a 4 s look-ahead (PULSES frames of about 2 s of pulses) changes what goes
on the wire, never what is delivered, and the host still talks to the device well inside its watchdog.

* the same delivered pulses (times, channels, amplitudes, shapes), record counts, peaks, end reason and
  acknowledged-pulse digest as with the earlier 2 s look-ahead, under pauses, resumes, stops, intensity
  changes, an electrode fault and damaged frames, in-process and through pyusb;
* fewer, larger PULSES frames (each within the 1488-pulse limit), and the record's link figures are the
  frames that were actually received;
* no two frames from the host reach the device more than 0.9 × the watchdog period apart in a healthy run
  (the documented margin), including through long pauses between contractions; a host that really goes
  silent is still stopped by the device watchdog within its period.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.clock import VirtualClock
from stimscript.drivers import wire as w
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackBackend, LoopbackDriver
from stimscript.runtime import SessionController
from stimscript.runtime.dispatcher import Dispatcher
from stimscript.runtime.testing import nmes_schedule


class Recorded(Emulator):
    """The loopback emulator, keeping the device time and type of every frame the host sent."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.host_frames: list[tuple[int, int, int]] = []   # (device time, type, PULSES count)

    def _handle(self, fr):
        n = int.from_bytes(fr.payload[12:14], "little") if fr.mtype == w.PULSES else 0
        self.host_frames.append((self.rx_t, fr.mtype, n))
        super()._handle(fr)


def _run(sched, kind, lookahead_ms, plan=(), faults=()):
    clock = VirtualClock(1_000_000)
    emu = Recorded(clock=clock, capture=True)
    for f in faults:
        if f[0] == "electrode":
            emu.inject_electrode_fault(f[1], f[2])
        else:
            emu.inject_link_fault(f[0], f[1], f[2], "both")
    dev = LoopbackDriver(emulator=emu) if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
    dev.open()
    ctl = SessionController()
    for t, action, *args in plan:
        ctl.at(t, action, *args)
    rec = stimscript.run(sched, device=dev, clock=clock, record=False, controller=ctl, lookahead_ms=lookahead_ms)
    dev.close()
    return rec, emu


def _delivered(rec, emu):
    return (rec.end_reason, rec.delivered, rec.peak_ua, rec.underruns, rec.device_log["acked_sha256"],
            emu.output.tobytes(), emu.delivered_sha256)


actions = st.lists(st.tuples(st.integers(0, 14_000_000), st.sampled_from(
    ["pause", "resume", "intensity_up", "intensity_down", "stop"])), max_size=6)


@settings(max_examples=25, deadline=None)
@given(actions, st.sampled_from(["loopback", "usb"]), st.sampled_from([(), (("electrode", 2, 3_100_000),),
                                                                        (("corrupt", 2_000_000, 4),)]))
def test_the_look_ahead_changes_the_frames_never_the_delivered_pulses(plan, kind, faults):
    sched = nmes_schedule(channels=4, seconds=15, on_s=4, off_s=2, ramp_s=0.5)
    plan = sorted(plan)
    old_rec, old_emu = _run(sched, kind, 2000, plan, faults)
    new_rec, new_emu = _run(sched, kind, None, plan, faults)
    assert _delivered(new_rec, new_emu) == _delivered(old_rec, old_emu)
    # the record's link figures count the frames that actually arrived: on a clean link, every frame the
    # device sent since the handshake (its sequence numbers)
    if not faults:
        assert new_rec.link["frames_ok"] == new_emu.link.tx_seq
        assert new_emu.link.stats.frames_ok == len(new_emu.host_frames)


def test_a_long_session_goes_out_in_fewer_larger_pulses_frames():
    sched = nmes_schedule(channels=8, seconds=120, on_s=10, off_s=20, ramp_s=1)
    old_rec, old_emu = _run(sched, "loopback", 2000)
    new_rec, new_emu = _run(sched, "loopback", None)
    assert Dispatcher.VIRTUAL_LOOKAHEAD_US == 4_000_000
    assert _delivered(new_rec, new_emu) == _delivered(old_rec, old_emu)
    assert new_rec.end_reason == "completed" and new_emu.output.tobytes() == sched.pulses.tobytes()
    old_pulses = [n for _, t, n in old_emu.host_frames if t == w.PULSES]
    new_pulses = [n for _, t, n in new_emu.host_frames if t == w.PULSES]
    assert sum(new_pulses) == sum(old_pulses) == len(sched.pulses)
    assert len(new_pulses) < 0.7 * len(old_pulses)
    assert max(new_pulses) <= w.MAX_PULSES_PER_FRAME


@pytest.mark.parametrize("lookahead_ms", [None, 2000, 200])
def test_a_healthy_run_never_lets_the_host_go_quiet_near_the_watchdog(lookahead_ms):
    sched = nmes_schedule(channels=2, seconds=90, on_s=5, off_s=25, ramp_s=1)
    rec, emu = _run(sched, "loopback", lookahead_ms, plan=[(40_000_000, "pause"), (47_000_000, "resume")])
    assert rec.end_reason == "completed" and not rec.faults
    wd_us = emu.profile.watchdog_ms * 1000
    times = [t for t, _, _ in emu.host_frames if emu.epoch <= t <= emu.epoch + sched.duration_us]
    gaps = np.diff(times)
    assert gaps.max() <= 0.9 * wd_us, gaps.max()


def test_a_host_that_really_goes_silent_is_stopped_by_the_watchdog():
    sched = nmes_schedule(channels=2, seconds=20, on_s=20, off_s=0, ramp_s=0)
    t = 6_000_000
    rec, emu = _run(sched, "loopback", None, plan=[(t, "stall", 3_000_000)])
    assert rec.end_reason == "fault" and any("watchdog" in f for f in rec.faults)
    wd = [f for f in emu.faults if f.code == w.FAULT_WATCHDOG]
    last_host_frame = max(ft for ft, _, _ in emu.host_frames if ft - emu.epoch <= t)
    assert wd and wd[0].device_t_us == last_host_frame + emu.profile.watchdog_ms * 1000
    assert emu.output["t_us"].max() < wd[0].device_t_us - emu.epoch
