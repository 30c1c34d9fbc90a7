"""Fault scenarios: every one ends with the right end_reason and the output off afterwards."""
from __future__ import annotations

import numpy as np
import pytest

import stimscript
from stimscript.compiler.ir import PULSE_DTYPE
from stimscript.drivers import events as ev
from stimscript.drivers import wire as w
from stimscript.runtime import SessionController
from stimscript.runtime.testing import device_kinds, nmes_schedule, open_test_device

KINDS = [k for k in device_kinds() if k in ("loopback", "usb-loopback")]  # fault injection needs the emulator
PERIOD = 20_000


@pytest.fixture(params=KINDS)
def dev(request):
    d = open_test_device(request.param)
    yield d
    d.close()


@pytest.fixture(scope="module")
def sched():
    s = nmes_schedule(channels=4, seconds=20, on_s=6, off_s=2, ramp_s=1)
    s.pulses
    return s


def run(s, dev, tmp_path, **kw):
    return stimscript.run(s, device=dev, realtime=False, db=tmp_path / "f.sqlite", **kw)


def assert_off_after(dev, t_us):
    emu = dev.emulator
    out = emu.output
    assert out["t_us"].max() <= t_us, "output after the fault"
    assert emu.queue_level == 0 and not emu.output_on


def test_electrode_fault(dev, sched, tmp_path):
    t = 3_210_000
    dev.emulator.inject_electrode_fault(2, t)
    rec = run(sched, dev, tmp_path, lookahead_ms=200)   # the real-time look-ahead
    assert rec.end_reason == "fault"
    assert any("electrode" in f and "channel 2" in f for f in rec.faults)
    out = dev.emulator.output
    assert out[out["channel"] == 2]["t_us"].max() < t          # the channel stopped at once
    # the device stops only the faulty channel; the host turns everything off when it next polls
    # (at most one look-ahead later)
    assert_off_after(dev, t + 200_000)
    assert np.array_equal(out[out["t_us"] < t], sched.pulses[sched.pulses["t_us"] < t])


def test_over_limit_fault(dev, sched, tmp_path):
    t = 2_500_000
    dev.emulator.inject_over_limit(1, t)
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "fault" and any("over_limit" in f for f in rec.faults)
    assert_off_after(dev, t - 1)


def test_watchdog_host_stall(dev, sched, tmp_path):
    ctl = SessionController()
    t = 4_000_000
    ctl.at(t, "stall", 2_000_000)
    rec = run(sched, dev, tmp_path, controller=ctl)
    assert rec.end_reason == "fault" and any("watchdog" in f for f in rec.faults)
    emu = dev.emulator
    wd = [f for f in emu.faults if f.code == w.FAULT_WATCHDOG]
    assert wd and wd[0].device_t_us - emu.epoch <= t + 500_000
    assert_off_after(dev, t + 500_000)


def test_watchdog_injected_stall(dev, sched, tmp_path):
    dev.emulator.inject_host_stall(5_000_000, 3_000_000)  # every frame from the host lost for 3 s
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "fault"
    assert_off_after(dev, 5_000_000 + 500_000)


def test_short_stall_is_an_underrun_not_a_fault_and_ends_degraded(dev, tmp_path):
    s = nmes_schedule(channels=2, seconds=4, on_s=4, off_s=0, ramp_s=0)
    ctl = SessionController()
    ctl.at(1_000_000, "stall", 250_000)   # longer than the 200 ms look-ahead, shorter than the watchdog
    rec = run(s, dev, tmp_path, controller=ctl, lookahead_ms=200)
    # the session ran to its end, but not every scheduled pulse was delivered: not "completed"
    assert rec.end_reason == "degraded" and not rec.faults
    assert rec.underruns > 0
    out = dev.emulator.output
    assert sum(rec.delivered.values()) == len(out) == len(s.pulses) - rec.underruns
    assert rec.scheduled_pulses == len(s.pulses)
    assert rec.end_detail == (f"{len(out)} of {len(s.pulses)} scheduled pulses delivered; "
                              f"{rec.underruns} reached the device too late (underruns)")
    from stimscript.runtime.records import RecordStore

    with RecordStore(tmp_path / "f.sqlite") as store:
        back = store.get(rec.id)
    assert (back.end_reason, back.end_detail, back.scheduled_pulses) == ("degraded", rec.end_detail, len(s.pulses))
    # host jitter never moved a pulse: everything delivered is at its scheduled time
    ref = {(int(t), int(c)) for t, c in zip(s.pulses["t_us"], s.pulses["channel"])}
    assert all((int(t), int(c)) in ref for t, c in zip(out["t_us"], out["channel"]))


def test_disconnect(dev, sched, tmp_path):
    t = 6_000_000
    dev.emulator.inject_disconnect(t)
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "disconnected"
    out = dev.emulator.output
    assert out["t_us"].max() < t
    assert dev.emulator.disconnected and not dev.emulator.output_on
    # the record holds what was acknowledged before the device vanished
    assert 0 < sum(rec.delivered.values()) <= len(out)


@pytest.mark.parametrize("direction", ["rx", "tx", "both"])
def test_corrupted_frames_detected_and_recovered(dev, sched, tmp_path, direction):
    dev.emulator.corrupt_frames(6, direction=direction, garbage=40)
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "completed"
    assert np.array_equal(dev.emulator.output, sched.pulses)          # nothing lost, nothing doubled
    assert rec.delivered == sched.counts()
    emu_stats = dev.emulator.link.stats
    host_stats = dev.link.stats
    if direction in ("rx", "both"):
        assert emu_stats.bad_header + emu_stats.bad_crc + emu_stats.bad_length >= 6 and emu_stats.garbage_bytes >= 40
        assert emu_stats.seq_gaps > 0 and host_stats.retransmitted > 0
    if direction in ("tx", "both"):
        assert host_stats.bad_crc + host_stats.bad_header >= 6 and emu_stats.retransmitted > 0
    assert rec.link["bad_crc"] == host_stats.bad_crc


def test_slow_acks_still_account_for_every_pulse(dev, sched, tmp_path):
    dev.emulator.slow_acks(300_000)
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "completed" and rec.delivered == sched.counts()


def _started_on_virtual_time(dev):
    """The device on a virtual clock, shapes uploaded and started: (clock, epoch) for driver-level tests."""
    from stimscript.runtime.clock import VirtualClock

    clock = VirtualClock()
    dev.use_clock(clock)
    dev.upload_shapes(nmes_schedule(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0).shapes)
    epoch = dev.device_time_us()
    dev.start(epoch)
    return clock, epoch


def test_over_limit_pulse_at_the_driver_level(dev):
    clock, epoch = _started_on_virtual_time(dev)
    p = np.zeros(3, dtype=PULSE_DTYPE)
    p["t_us"] = epoch + np.array([1000, 21_000, 41_000])
    p["channel"] = 1
    p["amplitude_ua"] = [50_000, 130_000, 50_000]   # the middle one is above the device's 120 mA
    dev.send_block(p)
    clock.advance(100_000)
    msgs = dev.poll()
    faults = [m for m in msgs if isinstance(m, ev.FaultReport)]
    assert faults and faults[0].kind == "over_limit" and faults[0].detail == "130000 µA measured" and faults[0].output_off
    out = dev.emulator.output
    assert list(out["amplitude_ua"]) == [50_000]
    assert not dev.emulator.output_on and dev.emulator.queue_level == 0


def test_too_fast_pulses_fault(dev):
    clock, epoch = _started_on_virtual_time(dev)
    p = np.zeros(2, dtype=PULSE_DTYPE)
    p["t_us"] = epoch + np.array([1000, 1500])   # 2 kHz on one channel; the device allows 1 kHz
    p["channel"] = 1
    p["amplitude_ua"] = 10_000
    dev.send_block(p)
    clock.advance(10_000)
    assert any(isinstance(m, ev.FaultReport) and m.kind == "over_limit" for m in dev.poll())
    assert len(dev.emulator.output) == 1


def test_electrode_fault_default_virtual_lookahead(dev, sched, tmp_path):
    """In virtual time the host polls at least every 0.8 × watchdog (400 ms): that bounds its reaction."""
    t = 3_210_000
    dev.emulator.inject_electrode_fault(2, t)
    rec = run(sched, dev, tmp_path)
    assert rec.end_reason == "fault"
    out = dev.emulator.output
    assert out[out["channel"] == 2]["t_us"].max() < t
    assert_off_after(dev, t + 400_000)
