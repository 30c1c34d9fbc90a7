"""Link recovery cannot stall: random fault schedules on virtual time always end, within a bound, with the
output off and a record that never claims more than the device delivered."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.drivers import wire as w
from stimscript.runtime import VirtualClock
from stimscript.runtime.testing import nmes_schedule, open_test_device

SCHED = nmes_schedule(channels=4, seconds=8, on_s=3, off_s=1, ramp_s=0.5)
SCHED.pulses
#: worst case to end after the last fault: link-loss deadline (2 s) + drain (3 s) + watchdog, with margin
END_BOUND_US = 8_000_000

faults = st.lists(st.one_of(
    st.tuples(st.sampled_from(["corrupt", "drop", "duplicate", "reorder"]), st.integers(0, 7_000_000),
              st.integers(1, 60), st.sampled_from(["rx", "tx", "both"])),
    st.tuples(st.just("silence"), st.integers(0, 7_000_000), st.integers(10_000, 3_000_000)),
    st.tuples(st.just("stall"), st.integers(0, 7_000_000), st.integers(10_000, 3_000_000)),
    st.tuples(st.just("slow_acks"), st.integers(0, 1_500_000)),
), max_size=5)


def apply(emu, schedule):
    last = 0
    for f in schedule:
        if f[0] == "silence":
            emu.inject_device_silence(f[1], f[2])
            last = max(last, f[1] + f[2])
        elif f[0] == "stall":
            emu.inject_host_stall(f[1], f[2])
            last = max(last, f[1] + f[2])
        elif f[0] == "slow_acks":
            emu.slow_acks(f[1])
        else:
            emu.inject_link_fault(f[0], f[1], f[2], f[3])
            last = max(last, f[1])
    return last


@settings(max_examples=40, deadline=None)
@given(faults, st.sampled_from(["loopback", "usb-loopback"]))
def test_random_fault_schedules_always_end_truthfully(schedule, kind):
    dev = open_test_device(kind)
    emu = dev.emulator
    last = apply(emu, schedule)
    clock = VirtualClock()
    rec = stimscript.run(SCHED, device=dev, clock=clock, record=False)
    ended_at = emu.time_us() - emu.epoch
    # it ended, within a bound after the schedule's end or the last fault
    assert ended_at <= max(SCHED.duration_us, last) + END_BOUND_US
    assert rec.end_reason in ("completed", "degraded", "fault", "disconnected")
    # output off, queue empty
    assert not emu.output_on and emu.queue_level == 0
    out = emu.output
    truth = {c: int(np.count_nonzero(out["channel"] == c)) for c in range(1, 5)}
    # never more than the device delivered; equal whenever the device could report its end
    assert all(rec.delivered.get(c, 0) <= truth[c] for c in truth)
    if rec.end_reason in ("completed", "degraded"):
        assert rec.delivered == truth
    if rec.end_reason == "completed":
        assert len(out) == len(SCHED.pulses) and np.array_equal(out, SCHED.pulses)
    if rec.end_reason == "degraded":
        assert rec.end_detail.startswith(f"{len(out)} of {len(SCHED.pulses)} scheduled pulses delivered")
    dev.close()


def test_corruption_burst_in_both_directions_ends_truthfully():
    """The reported hang: 50 damaged frames both ways at t = 5 s of an 8-channel run."""
    s = nmes_schedule(channels=8, seconds=20, on_s=5, off_s=2, ramp_s=1)
    dev = open_test_device("loopback")
    dev.emulator.inject_link_fault("corrupt", 5_000_000, 50, "both")
    rec = stimscript.run(s, device=dev, record=False)
    emu = dev.emulator
    assert rec.end_reason == "fault" and any("watchdog" in f for f in rec.faults)
    assert rec.delivered == {c: int(np.count_nonzero(emu.output["channel"] == c)) for c in range(1, 9)}
    assert not emu.output_on and dev.link.stats.timeouts > 0


def test_a_lost_nak_is_repeated_by_the_timer():
    s = nmes_schedule(channels=2, seconds=4, on_s=4, off_s=0, ramp_s=0)
    dev = open_test_device("loopback")
    # one device frame lost (a gap at the host), then the host's NAK lost on its way: the first NAK the host
    # sends is the next frame the device loses
    dev.emulator.inject_link_fault("drop", 1_000_000, 1, "tx")
    host_nak = dev.link._nak

    def nak_and_lose_it():
        if dev.link.stats.naks_sent == 0:
            dev.emulator.inject_link_fault("drop", None, 1, "rx")
        return host_nak()

    dev.link._nak = nak_and_lose_it
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason == "completed" and rec.delivered == s.counts()
    assert dev.link.stats.naks_sent >= 2 and dev.link.stats.nak_retries >= 1
    assert all(f.count == 0 for f in dev.emulator.link_faults)


def test_device_silence_ends_disconnected_not_hanging():
    s = nmes_schedule(channels=2, seconds=10, on_s=10, off_s=0, ramp_s=0)
    dev = open_test_device("loopback")
    dev.emulator.inject_device_silence(2_000_000, 60_000_000)   # it never speaks again
    rec = stimscript.run(s, device=dev, record=False)
    assert rec.end_reason in ("disconnected", "fault")
    assert any("no answer from the device" in f for f in rec.faults)
    assert dev.emulator.time_us() - dev.emulator.epoch < 2_000_000 + END_BOUND_US
    assert not dev.emulator.output_on


def test_emulator_watchdog_is_fed_by_every_crc_valid_frame():
    """Out-of-order frames (a gap the host has not repaired yet) still prove the host is alive."""
    from stimscript.runtime.testing import nmes_schedule as ns

    clock = VirtualClock()
    dev = open_test_device("loopback")
    dev.use_clock(clock)
    dev.upload_shapes(ns(channels=1, seconds=1, on_s=1, off_s=0, ramp_s=0).shapes)
    epoch = dev.device_time_us()
    dev.start(epoch)
    emu = dev.emulator
    emu.link.nak_retry_us = 10**12            # the device never repeats its NAK: the gap stays open
    frame = dev.link.send(w.KEEPALIVE)        # a frame the device never gets
    for _ in range(8):                        # 8 x 200 ms: only out-of-order frames arrive
        clock.advance(200_000)
        emu.host_write(dev.link.send(w.KEEPALIVE))
    assert emu.state == w.RUNNING and emu.link.stats.seq_gaps >= 8 and frame
