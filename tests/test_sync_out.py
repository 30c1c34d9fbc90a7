"""Sync out: TTL edges the loopback device raises at device times, equal to the schedule.

The oracle is the emulator's own record of the edges (``dev.emulator.sync_edges``) against times computed
here from the pulses the emulator delivered and the trains' own parameters, not by the code under test.
"""
import numpy as np
import pytest

import stimscript
from stimscript.drivers import wire as w
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.errors import DriverError
from stimscript.profile import LOOPBACK_PROFILE
from stimscript.research.syncout import SyncOut
from stimscript.runtime import SessionController
from stimscript.runtime.testing import nmes_schedule


def run(schedule, sync, controls=(), emulator=None, **kw):
    ctl = SessionController(**kw)
    for t, action, *args in controls:
        ctl.at(t, action, *args)
    dev = LoopbackDriver(emulator=emulator) if emulator is not None else stimscript.open_device("loopback", capture=True)
    rec = stimscript.run(schedule, device=dev, controller=ctl, record=False, observers=[sync],
                         param_ranges={"intensity": (0, 60_000)})
    out, edges = dev.emulator.output.copy(), dev.emulator.sync_edges.copy()
    dev.close()
    return rec, out, edges


def first_pulse_of_each_contraction(schedule, delivered) -> np.ndarray:
    """From the delivered pulses and each train's start and cycle length."""
    firsts = set()
    for tr in schedule.trains:
        mine = delivered[delivered["channel"] == tr.channel]["t_us"].astype(np.int64)
        mine = mine[(mine >= tr.start_us) & (mine < tr.end_us)]
        cycle = (mine - tr.start_us) // tr.cycle_us
        for k in np.unique(cycle):
            firsts.add(int(mine[cycle == k].min()))
    return np.array(sorted(firsts), dtype=np.int64)


def test_an_edge_at_the_session_start():
    sched = nmes_schedule(channels=2, seconds=12, on_s=3, off_s=3)
    sync = SyncOut("start")
    rec, out, edges = run(sched, sync)
    assert rec.end_reason == "completed"
    assert edges["t_us"].tolist() == [0] and edges["line"].tolist() == [1] and edges["width_us"].tolist() == [1000]
    assert sync.edges_us.tolist() == [0]                   # the device reported it, the host recorded it
    assert rec.device_log["extra"]["sync_out"]["first_edge_us"] == 0


def test_an_edge_at_every_contraction_equals_the_schedule():
    sched = nmes_schedule(channels=3, seconds=40, on_s=4, off_s=5, ramp_s=0.5, freq_hz=40, stagger_us=1_333_333)
    sync = SyncOut("contraction", width_us=5_000)
    rec, out, edges = run(sched, sync)
    assert rec.end_reason == "completed"
    expected = first_pulse_of_each_contraction(sched, out)
    assert len(expected) == sum(tr.cycles for tr in sched.trains)
    assert edges["t_us"].tolist() == expected.tolist()
    assert set(edges["width_us"].tolist()) == {5_000}
    assert sync.edges_us.tolist() == expected.tolist()
    log = rec.device_log["extra"]["sync_out"]
    assert (log["raised"], log["missed"], log["mode"]) == (len(expected), 0, "contraction")


def test_an_edge_at_every_pulse_equals_the_delivered_pulses():
    sched = nmes_schedule(channels=2, seconds=20, on_s=3, off_s=2, ramp_s=0.4, freq_hz=40, stagger_us=333_333)
    rec, out, edges = run(sched, SyncOut("pulse"))
    assert rec.end_reason == "completed"
    assert edges["t_us"].tolist() == np.unique(out["t_us"]).tolist()
    assert len(edges) == len(out)                          # no two pulses share an instant here


def test_no_edges_while_paused_or_after_a_stop():
    sched = nmes_schedule(channels=2, seconds=30, on_s=4, off_s=3, ramp_s=0.5, freq_hz=40, stagger_us=333_333)
    controls = [(5_100_000, "pause"), (7_000_000, "resume"), (16_000_000, "stop")]
    rec, out, edges = run(sched, SyncOut("pulse"), controls, pause_ramp_ms=300, resume_ramp_ms=200)
    assert rec.end_reason == "stopped"
    delivered = set(out["t_us"].tolist())
    raised = edges["t_us"].tolist()
    assert raised == sorted(set(raised))
    assert delivered <= set(raised)                        # every delivered pulse had its edge
    # the only edges without a delivered pulse: the first instant of the resume ramp (amplitude 0, silent)
    resumes = [e.session_us for e in rec.events if e.kind == "resume"]
    assert set(raised) - delivered <= set(resumes)
    # nothing while the output was off, nothing after the stop ramp ended
    pause_end = [e.session_us for e in rec.events if e.kind == "pause"][0]
    assert not [t for t in raised if pause_end <= t < resumes[0]]
    assert max(raised) <= max(delivered)


def test_an_emergency_stop_flushes_the_edges_still_queued():
    sched = nmes_schedule(channels=1, seconds=20, on_s=4, off_s=2)
    sync = SyncOut("pulse")
    rec, out, edges = run(sched, sync, [(6_500_000, "estop")])
    assert rec.end_reason == "emergency_stop"
    assert edges["t_us"].tolist() == out["t_us"].tolist()
    assert sync.missed_total > 0                           # queued ahead, flushed by the stop


def test_a_device_without_sync_output_is_refused_before_a_session():
    dev = LoopbackDriver(emulator=Emulator(capture=True, sync_lines=0))
    dev.open()
    try:
        assert dev.sync_lines == 0
        with pytest.raises(DriverError, match="has no sync output"):
            SyncOut.check(dev)
        with pytest.raises(DriverError, match="no sync output 1"):
            dev.sync_out(1, 1000, np.array([1]))
    finally:
        dev.close()


def test_wire_bytes_of_the_extension():
    payload = w.encode_sync_out(1, 1000, [0x0102030405060708, 0x0102030405060709])
    assert payload[:7] == bytes([1, 0xE8, 0x03, 0, 0, 2, 0])          # line, width_us u32, n u16
    assert payload[7:15] == bytes([8, 7, 6, 5, 4, 3, 2, 1])           # i64 LE device time
    m = w.decode_sync_out(payload)
    assert (m.line, m.width_us, m.t_us.tolist()) == (1, 1000, [0x0102030405060708, 0x0102030405060709])
    e = w.decode_sync_edges(w.encode_sync_edges(1, 7, 2, [5, 9]))
    assert (e.line, e.raised_total, e.missed_total, e.t_us.tolist()) == (1, 7, 2, [5, 9])
    with pytest.raises(ValueError, match="non-decreasing"):
        w.encode_sync_out(1, 1000, [5, 4])
    with pytest.raises(ValueError, match="length"):
        w.decode_sync_edges(w.encode_sync_edges(1, 0, 0, [5])[:-1])


def test_hello_reply_without_the_sync_byte_still_reads_and_means_no_sync_output():
    old = w.encode_hello_reply(5, "SN", LOOPBACK_PROFILE)               # as before the extension
    new = w.encode_hello_reply(5, "SN", LOOPBACK_PROFILE, sync_lines=2)
    assert new[:-1] == old and new[-1] == 2
    assert w.decode_hello_reply(old).sync_lines == 0
    info = w.decode_hello_reply(new)
    assert info.sync_lines == 2 and info.profile == LOOPBACK_PROFILE    # older fields unchanged


def test_a_device_ignores_sync_out_it_does_not_know():
    # an older device (no sync lines) answers SYNC_OUT with nothing and keeps the session going
    sched = nmes_schedule(channels=1, seconds=6, on_s=2, off_s=1)
    emu = Emulator(capture=True, sync_lines=0)
    dev = LoopbackDriver(emulator=emu)
    dev.open()
    dev.hello.sync_lines = 1          # pretend the host believed otherwise
    try:
        rec = stimscript.run(sched, device=dev, record=False, observers=[SyncOut("pulse")])
        assert rec.end_reason == "completed"
        assert len(emu.sync_edges) == 0 and len(emu.output) == len(sched.pulses)
    finally:
        dev.close()
