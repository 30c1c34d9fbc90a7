"""A wake's own KEEPALIVE sent as the first frame of the fill train that follows it (``Dispatcher.MERGE_KEEPALIVE``)
changes nothing on the wire and nothing in the record.

The reference is the same dispatcher with the KEEPALIVE written alone (``MERGE_KEEPALIVE = False``). Compared:
every frame the device received (device time it arrived, type, seq, ack, payload), every byte the host read from
the device (and the device time it read them at), the record (counts, peaks, end, log rows, device log, link
figures) and the delivered pulses, under pauses, resumes, stops, emergency stops and intensity changes, with and
without an event handler (which may stop the device itself: the KEEPALIVE must already have gone out), in-process
and through pyusb. The merged run must also really write fewer lone KEEPALIVEs.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.clock import VirtualClock
from stimscript.drivers import wire as w
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackBackend, LoopbackDriver
from stimscript.runtime import SessionController
from stimscript.runtime.dispatcher import Dispatcher
from stimscript.runtime.testing import nmes_schedule


class Transcript(Emulator):
    """The loopback emulator keeping both directions of the wire: each frame it took (its device time, type,
    seq, ack and payload), each non-empty read by the host (device time, bytes), and the lone KEEPALIVE writes."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.wire: list[tuple] = []
        self.lone_keepalives = 0

    def _handle(self, fr):
        self.wire.append(("in", self.rx_t, fr.mtype, fr.seq, fr.ack, bytes(fr.payload)))
        super()._handle(fr)

    def host_write(self, data):
        if len(data) == w.HEADER_SIZE + w.CRC_SIZE and data[3] == w.KEEPALIVE:
            self.lone_keepalives += 1
        return super().host_write(data)

    def host_read(self, max_bytes=65536):
        out = super().host_read(max_bytes)
        if out:
            self.wire.append(("out", self._now, out))
        return out


def _run(kind, plan, merge, estop_at_event):
    clock = VirtualClock(1_000_000)
    emu = Transcript(clock=clock, capture=True)
    dev = LoopbackDriver(emulator=emu) if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
    dev.open()
    ctl = SessionController()
    for t, action in plan:
        ctl.at(t, action)
    events = []

    def on_event(e):
        events.append((e.kind, e.t_us, e.detail))
        if estop_at_event is not None and e.kind == "progress" and e.t_us >= estop_at_event:
            ctl.emergency_stop()     # from inside the handler: ESTOP goes out at once

    old = Dispatcher.MERGE_KEEPALIVE
    Dispatcher.MERGE_KEEPALIVE = merge
    try:
        rec = stimscript.run(nmes_schedule(channels=2, seconds=16, on_s=3, off_s=4, ramp_s=1), device=dev,
                             clock=clock, record=False, controller=ctl,
                             on_event=on_event if estop_at_event is not None or plan else None)
    finally:
        Dispatcher.MERGE_KEEPALIVE = old
    dev.close()
    facts = (rec.end_reason, rec.end_detail, rec.delivered, rec.peak_ua, rec.underruns, rec.faults, rec.elapsed_us,
             rec.paused_us, rec.channel_ua, rec.device_log, rec.link,
             [(e.kind, e.device_us, e.channel, e.old_ua, e.new_ua, e.detail) for e in rec.events],
             emu.output.tobytes(), emu.delivered_sha256, emu.link.stats.as_dict(), events)
    return facts, emu


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(st.tuples(st.integers(0, 15_000_000), st.sampled_from(
           ["pause", "resume", "intensity_up", "intensity_down", "stop", "estop"])), max_size=5),
       kind=st.sampled_from(["loopback", "usb"]),
       estop_at_event=st.one_of(st.none(), st.integers(0, 15_000_000)))
def test_the_keepalive_merged_into_the_train_changes_no_byte_and_no_record(plan, kind, estop_at_event):
    plan = sorted(plan)
    ref, ref_emu = _run(kind, plan, False, estop_at_event)
    new, new_emu = _run(kind, plan, True, estop_at_event)
    assert new_emu.wire == ref_emu.wire
    assert new == ref


def test_a_quiet_run_writes_its_keepalives_with_the_trains():
    ref, ref_emu = _run("loopback", [], False, None)
    new, new_emu = _run("loopback", [], True, None)
    assert new_emu.wire == ref_emu.wire and new == ref
    assert ref_emu.lone_keepalives > 20
    assert new_emu.lone_keepalives < ref_emu.lone_keepalives // 10
