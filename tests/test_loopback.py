"""The loopback driver, the emulator's own behaviour, and the driver registry."""
from __future__ import annotations

import numpy as np
import pytest

import stimscript
from stimscript.compiler.ir import PULSE_DTYPE
from stimscript.drivers import available_drivers, open_device, registry
from stimscript.drivers import events as ev
from stimscript.drivers import wire as w
from stimscript.drivers.base import Driver
from stimscript.drivers.emulator import Emulator, round_div_half_even
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.errors import DeviceNotFound, DriverError
from stimscript.profile import LOOPBACK_PROFILE, DeviceProfile
from stimscript.runtime.clock import VirtualClock
from stimscript.runtime.testing import nmes_schedule
from hypothesis import given, strategies as st


def test_open_loopback_reports_the_normative_profile():
    with stimscript.open_device("loopback", capture=True) as dev:
        assert isinstance(dev, Driver) and isinstance(dev, LoopbackDriver)
        p = dev.capabilities()
        assert p == LOOPBACK_PROFILE
        assert (p.channels, p.max_current_ua, p.current_step_ua, p.min_phase_us, p.max_phase_us, p.max_rate_hz,
                p.time_base_us, p.queue_pulses, p.watchdog_ms, p.independent_sources) == \
            (8, 120_000, 10, 10, 10_000, 1000, 1, 4096, 500, True)
        assert dev.serial == "LOOPBACK-0001"
    assert not dev.is_open


def test_registry_and_did_you_mean(monkeypatch):
    assert available_drivers()["loopback"] == "stimscript.drivers.loopback:LoopbackDriver"
    assert available_drivers()["usb"] == "stimscript.drivers.usb:UsbDriver"
    with pytest.raises(DeviceNotFound, match="did you mean 'loopback'") as ei:
        open_device("loopbak")
    assert "known: loopback, p24, rehamove3, usb" in str(ei.value)
    # entry-point plug-ins are merged in (built-ins win)
    monkeypatch.setattr(registry, "_entry_points",
                        lambda: {"acme": "stimscript.drivers.loopback:LoopbackDriver", "usb": "nope:Nope"})
    assert available_drivers()["acme"].endswith("LoopbackDriver")
    assert available_drivers()["usb"] == "stimscript.drivers.usb:UsbDriver"
    dev = open_device("acme", serial="ACME-1")
    assert dev.serial == "ACME-1"
    monkeypatch.setattr(registry, "_entry_points", lambda: {"broken": "no.such.module:X"})
    with pytest.raises(DriverError, match="cannot be loaded"):
        open_device("broken")
    with pytest.raises(DriverError, match="bad options"):
        open_device("loopback", nonsense=1)


def test_custom_profile_comes_back_in_hello():
    prof = DeviceProfile(name="small", channels=2, max_current_ua=50_000, queue_pulses=64, watchdog_ms=200)
    dev = LoopbackDriver(capture=True, profile=prof, serial="S-2")
    dev.open()
    assert dev.capabilities() == prof and dev.serial == "S-2"


def test_small_queue_flow_control_still_bit_exact():
    prof = DeviceProfile(name="tiny-queue", queue_pulses=16)
    dev = LoopbackDriver(capture=True, profile=prof)
    s = nmes_schedule(channels=8, seconds=5, on_s=5, off_s=0, ramp_s=1)
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason == "completed" and rec.underruns == 0
    assert np.array_equal(dev.emulator.output, s.pulses)
    assert not any("queue_overflow" in f for f in rec.faults)


@given(st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=50), st.integers(1, 10**7))
def test_round_div_half_even_matches_python(nums, den):
    got = round_div_half_even(np.array(nums, dtype=np.int64), den)
    from fractions import Fraction

    assert list(got) == [round(Fraction(n, den)) for n in nums]


def _session(emu: Emulator, clock: VirtualClock):
    dev = LoopbackDriver(emulator=emu)
    dev.open()
    dev.use_clock(clock)
    s = nmes_schedule(channels=2, seconds=1, on_s=1, off_s=0, ramp_s=0)
    dev.upload_shapes(s.shapes)
    epoch = dev.device_time_us()
    dev.start(epoch)
    return dev, epoch


def _pulses(epoch, times, ch=1, amp=10_005):
    p = np.zeros(len(times), dtype=PULSE_DTYPE)
    p["t_us"] = epoch + np.asarray(times)
    p["channel"] = ch
    p["amplitude_ua"] = amp
    return p


def test_scale_register_applied_at_pulse_time_round_half_even_no_quantisation():
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev, epoch = _session(emu, clock)
    dev.send_block(_pulses(epoch, [1000, 21_000, 41_000, 61_000]))
    clock.advance(10_000)
    dev.poll()
    dev.set_scale(1, 0.5)     # 10005 * 0.5 = 5002.5 -> 5002 (half to even)
    clock.advance(20_000)
    dev.poll()
    dev.set_scale(0, 1.5)     # all channels: 15007.5 -> 15008
    clock.advance(100_000)
    dev.poll()
    assert list(emu.output["amplitude_ua"]) == [10_005, 5_002, 15_008, 15_008]
    assert list(emu.output["t_us"]) == [1000, 21_000, 41_000, 61_000]


def test_estop_flushes_queue_and_silences_at_once():
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev, epoch = _session(emu, clock)
    dev.send_block(_pulses(epoch, np.arange(1000, 200_000, 20_000)))
    clock.advance(50_000)
    dev.estop()
    clock.advance(500_000)
    msgs = dev.poll()
    assert len(emu.output) == 3 and emu.queue_level == 0 and emu.state == w.ESTOPPED
    assert any(isinstance(m, ev.StatusReport) and m.state == "estopped" for m in msgs)
    acks = [m for m in msgs if isinstance(m, ev.PulsesDelivered)]
    assert sum(len(a.records) for a in acks) == 3
    # pulses sent after an emergency stop are refused
    dev.send_block(_pulses(epoch, [600_000]))
    clock.advance(200_000)
    dev.poll()
    assert len(emu.output) == 3


def test_watchdog_at_driver_level():
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev, epoch = _session(emu, clock)
    dev.send_block(_pulses(epoch, np.arange(1000, 2_000_000, 20_000)[:100]))
    clock.advance(2_000_000)           # the host says nothing for 2 s
    msgs = dev.poll()
    faults = [m for m in msgs if isinstance(m, ev.FaultReport)]
    assert [f.kind for f in faults] == ["watchdog"]
    assert faults[0].device_t_us - epoch == 500_000
    assert emu.output["t_us"].max() < 500_000 and emu.state == w.FAULTED


def test_late_pulses_are_dropped_and_counted():
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev, epoch = _session(emu, clock)
    clock.advance(100_000)
    dev.send_block(_pulses(epoch, [50_000, 90_000, 150_000]))
    clock.advance(100_000)
    dev.poll()
    assert emu.late_total == 2 and list(emu.output["t_us"]) == [150_000]


def test_bad_shape_table_is_refused():
    from stimscript.compiler.ir import PulseShape
    from stimscript.errors import DeviceFault

    dev = stimscript.open_device("loopback", capture=True)
    with pytest.raises(DeviceFault, match="bad_shape"):
        dev.upload_shapes([PulseShape(((5, 1.0), (5, -1.0)))])   # 5 µs phases: below 10 µs


def test_pulse_with_unknown_shape_or_channel_faults():
    clock = VirtualClock()
    emu = Emulator(capture=True)
    dev, epoch = _session(emu, clock)
    p = _pulses(epoch, [1000], ch=9)
    dev.send_block(p)
    clock.advance(10_000)
    assert any(isinstance(m, ev.FaultReport) and m.kind == "bad_pulse" for m in dev.poll())
    assert emu.state == w.FAULTED and len(emu.output) == 0


def test_emulator_real_time_clock_advances():
    emu = Emulator(capture=True)
    t0 = emu.time_us()
    import time

    time.sleep(0.01)
    assert emu.time_us() - t0 >= 9_000
