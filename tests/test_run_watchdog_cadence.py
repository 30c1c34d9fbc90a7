"""How many lost host frames the device's watchdog survives, in virtual time and in real time.

The host talks to the device at least every 100 ms in real time (a KEEPALIVE when nothing else went out), so
on the loopback's 500 ms watchdog its cadence alone survives three consecutive lost host frames: a fourth makes
the device hear nothing for 500 ms, and the watchdog stops the output at that very instant. Virtual time (what
the suite and users' fault-injection tests run on) used to wake every 450 ms and lose the session to one lost
frame; between its wakes the host now fills in KEEPALIVE frames so that its frames are never more than 100 ms
apart, as in real time: with the frame of each 450 ms wake on top, it survives four.

Counting every frame the device misses, retransmissions included, real time survives six: its 250 ms
retransmission timer, run at every 50 ms poll, resends the lost frames while the watchdog still runs (virtual
time runs that timer at its wakes only). The tests below measure all of it by injecting the loss of k
consecutive host frames at many points of a run (the emulator's link-fault injection), in virtual time and
with the real-time loop itself (driven by a virtual clock that says it is real time: no jitter, no sleeps):

* virtual time: 3 or 4 lost frames anywhere change nothing but the frames; 5 stop the device, exactly one
  watchdog period after the last frame it heard; real time: 3 to 6 lost frames anywhere, 7 stop it;
* the fill frames change nothing else: delivered pulses, the record (counts, peaks, log rows, device log,
  link figures) and every other host frame are those of the cadence without them
  (``LOST_FRAMES_TOLERATED = 0``), under pauses, resumes, stops and intensity changes, in-process and through
  pyusb;
* the emulator taking a quiet KEEPALIVE (or a train of them) without first replaying the pulses due gives the
  same result, frame counters included, as replaying before every frame (``Emulator.defer_replay = False``).
"""
from __future__ import annotations

import numpy as np
import pytest
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

WATCHDOG_US = 500_000
TOLERATED = 3          # what the cadence guarantees in both modes (docs/drivers.md, docs/wire-protocol.md)
#: what each mode survives on the loopback, measured (retransmissions included)
SURVIVES = {"virtual": 4, "realtime": 6}


class RealtimeCadenceClock(VirtualClock):
    """A virtual clock the runtime takes for real time: it runs its real-time loop (50 ms wakes, a KEEPALIVE
    at least every 100 ms, a 200 ms look-ahead), without jitter and without a single real sleep."""

    realtime = True


class Recorded(Emulator):
    """The loopback emulator, keeping the device time and type of every valid frame the host sent."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.host_frames: list[tuple[int, int]] = []

    def _handle(self, fr):
        self.host_frames.append((self.rx_t, fr.mtype))
        super()._handle(fr)


def _sched(seconds=24):
    return nmes_schedule(channels=2, seconds=seconds, on_s=4, off_s=6, ramp_s=1)


def _run(sched, *, mode="virtual", kind="loopback", drop=None, plan=(), tolerated=None, defer=True):
    clock = RealtimeCadenceClock(1_000_000) if mode == "realtime" else VirtualClock(1_000_000)
    emu = Recorded(clock=clock, capture=True)
    emu.defer_replay = defer
    if drop is not None:
        at_us, k = drop
        emu.inject_link_fault("drop", at_us, count=k, direction="rx")
    dev = LoopbackDriver(emulator=emu) if kind == "loopback" else \
        stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
    dev.open()
    ctl = SessionController()
    for t, action, *args in plan:
        ctl.at(t, action, *args)
    old = Dispatcher.LOST_FRAMES_TOLERATED
    Dispatcher.LOST_FRAMES_TOLERATED = tolerated
    try:
        rec = stimscript.run(sched, device=dev, clock=clock, record=False, controller=ctl)
    finally:
        Dispatcher.LOST_FRAMES_TOLERATED = old
    dev.close()
    return rec, emu


def _watchdog_tripped(rec, emu) -> bool:
    return any(f.code == w.FAULT_WATCHDOG for f in emu.faults)


def _session_frames(emu, sched):
    return [t for t, _ in emu.host_frames if emu.epoch <= t <= emu.epoch + sched.duration_us]


def test_the_budget_is_what_the_real_time_cadence_survives():
    # real time: a frame at least every keepalive; n lost frames leave (n + 1) keepalives of silence, which
    # must stay below the watchdog period (a frame at exactly the period is too late)
    budget = Dispatcher.frame_loss_budget.__get__(Dispatcher.__new__(Dispatcher))
    for watchdog_us, keepalive_us in [(500_000, 100_000), (2_000_000, 100_000), (400_000, 100_000),
                                      (100_000, 25_000), (1_000_000, 100_000)]:
        n, gap = budget(watchdog_us, keepalive_us)
        assert n == max(k for k in range(0, 1000) if (k + 1) * keepalive_us < watchdog_us)
        assert gap == keepalive_us                      # the same cadence as real time
    assert budget(500_000, 100_000) == (TOLERATED, 100_000)


def test_an_explicit_budget_spaces_the_frames_to_survive_exactly_that_many():
    d = Dispatcher.__new__(Dispatcher)
    for n in range(0, 8):
        d.LOST_FRAMES_TOLERATED = n
        got, gap = d.frame_loss_budget(500_000, 100_000)
        assert got == n and (n + 1) * gap < 500_000 <= (n + 2) * gap


@pytest.mark.parametrize("mode, kind", [("virtual", "loopback"), ("virtual", "usb"), ("realtime", "loopback")])
def test_a_healthy_run_never_leaves_the_device_without_a_frame_for_100_ms(mode, kind):
    sched = _sched()
    rec, emu = _run(sched, mode=mode, kind=kind)
    assert rec.end_reason == "completed" and not rec.faults
    t = np.array(_session_frames(emu, sched))
    assert np.diff(t).max() <= 100_000
    # losing the TOLERATED frames after any frame still lets the next one arrive in time
    assert (t[TOLERATED + 1:] - t[:-(TOLERATED + 1)]).max() < WATCHDOG_US
    if mode == "virtual":   # (with the frame of every 450 ms wake on top: one more)
        k = SURVIVES["virtual"]
        assert (t[k + 1:] - t[:-(k + 1)]).max() < WATCHDOG_US


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(at_us=st.integers(0, 20_000_000), mode=st.sampled_from(["virtual", "realtime"]),
       kind=st.sampled_from(["loopback", "usb"]), data=st.data())
def test_losing_up_to_the_budget_anywhere_stops_nothing(at_us, mode, kind, data):
    if mode == "realtime" and kind == "usb":
        kind = "loopback"     # (the pyusb path adds nothing to the cadence; keeps the example fast)
    k = data.draw(st.integers(TOLERATED, SURVIVES[mode]), label="k")
    sched = _sched()
    rec, emu = _run(sched, mode=mode, kind=kind, drop=(at_us, k))
    assert not _watchdog_tripped(rec, emu), (at_us, emu.faults)
    assert all(f.count == 0 for f in emu.link_faults)     # the frames really were lost (the link repaired it)
    _delivered_what_was_scheduled(rec, emu, sched)


def _delivered_what_was_scheduled(rec, emu, sched):
    """The session ran to its end; every pulse delivered is a scheduled one, unchanged; the only pulses
    missing are ones a lost PULSES frame brought too late (counted as underruns), never a watchdog stop."""
    assert rec.end_reason in ("completed", "degraded"), (rec.end_reason, rec.end_detail, rec.faults)
    if rec.end_reason == "completed":
        assert emu.output.tobytes() == sched.pulses.tobytes()
    else:
        assert "reached the device too late" in rec.end_detail and " lost" not in rec.end_detail, rec.end_detail
        scheduled = set(sched.pulses.tolist())
        assert all(p in scheduled for p in emu.output.tolist())
        assert len(emu.output) + rec.underruns == len(sched.pulses)


@pytest.mark.parametrize("mode", ["virtual", "realtime"])
def test_one_more_lost_frame_where_the_host_talks_least_trips_the_watchdog(mode):
    # during the 6 s without stimulation the host only feeds the watchdog: try many starting points there
    sched = _sched(seconds=12)
    tripped = []
    for at_us in range(5_600_000, 6_800_000, 37_000):
        rec, emu = _run(sched, mode=mode, drop=(at_us, SURVIVES[mode] + 1))
        if _watchdog_tripped(rec, emu):
            tripped.append(at_us)
            assert rec.end_reason == "fault"
            wd = next(f for f in emu.faults if f.code == w.FAULT_WATCHDOG)
            last = max(t for t, _ in emu.host_frames if t < wd.device_t_us)
            assert wd.device_t_us == last + WATCHDOG_US      # stopped exactly one period after the last frame
            assert emu.output["t_us"].max() < wd.device_t_us - emu.epoch
        else:
            _delivered_what_was_scheduled(rec, emu, sched)
    assert tripped, "losing one frame more than the budget never tripped the watchdog"
    if mode == "virtual":
        assert len(tripped) == len(range(5_600_000, 6_800_000, 37_000))   # anywhere in the pause


def _record_facts(rec, emu):
    return (rec.end_reason, rec.end_detail, rec.delivered, rec.peak_ua, rec.underruns, rec.faults, rec.elapsed_us,
            rec.stim_us, rec.paused_us, rec.intensity_ua, rec.channel_ua, rec.device_log, rec.link,
            [(e.kind, e.device_us, e.session_us, e.channel, e.old_ua, e.new_ua, e.duration_us, e.detail, e.scale_ppm)
             for e in rec.events],     # (every field but the wall-clock time it was written)
            emu.output.tobytes(), emu.delivered_sha256, emu.sync_edges.tobytes())


actions = st.lists(st.tuples(st.integers(0, 20_000_000), st.sampled_from(
    ["pause", "resume", "intensity_up", "intensity_down", "stop"])), max_size=6)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=actions, kind=st.sampled_from(["loopback", "usb"]))
def test_the_fill_frames_change_nothing_but_the_frames(plan, kind):
    sched = _sched()
    plan = sorted(plan)
    old_rec, old_emu = _run(sched, kind=kind, plan=plan, tolerated=0)   # the cadence before the fill frames
    new_rec, new_emu = _run(sched, kind=kind, plan=plan)
    assert _record_facts(new_rec, new_emu) == _record_facts(old_rec, old_emu)
    old_frames = [f for f in old_emu.host_frames if f[1] != w.KEEPALIVE]
    new_frames = [f for f in new_emu.host_frames if f[1] != w.KEEPALIVE]
    assert new_frames == old_frames           # every other frame the host sent, at the same device time


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=actions, kind=st.sampled_from(["loopback", "usb"]),
       fault=st.sampled_from([None, ("electrode", 2, 3_100_000), ("over_limit", 1, 9_500_000)]))
def test_a_keepalive_taken_without_a_replay_changes_nothing(plan, kind, fault):
    sched = _sched()
    plan = sorted(plan)
    out = []
    for defer in (False, True):
        clock = VirtualClock(1_000_000)
        emu = Recorded(clock=clock, capture=True)
        emu.defer_replay = defer
        if fault is not None:
            getattr(emu, f"inject_{fault[0]}" + ("_fault" if fault[0] == "electrode" else ""))(fault[1], fault[2])
        dev = LoopbackDriver(emulator=emu) if kind == "loopback" else \
            stimscript.open_device("usb", backend=LoopbackBackend(emulator=emu))
        dev.open()
        ctl = SessionController()
        for t, action, *args in plan:
            ctl.at(t, action, *args)
        rec = stimscript.run(sched, device=dev, clock=clock, record=False, controller=ctl)
        dev.close()
        out.append((_record_facts(rec, emu), emu.host_frames, emu.link.stats.as_dict(), emu.faults,
                    emu.delivered_total, emu.late_total, emu.flushed_total))
    assert out[1] == out[0]


def test_a_keepalive_train_meets_the_watchdog_ramp_ends_and_faults_on_its_way():
    """``host_write_timed`` takes a train in one step only when nothing is due on the way; otherwise frame by
    frame, each at its own time: a train that starts after the watchdog bit is too late for it."""
    clock = VirtualClock(0)
    emu = Emulator(clock=clock, capture=True)
    dev = LoopbackDriver(emulator=emu)
    dev.open()
    dev.use_clock(clock)
    sched = _sched(seconds=2)
    dev.upload_shapes(sched.shapes)
    t0 = clock.now_us()
    dev.start(emu.time_us())
    # a quiet train: fed in time, nothing else due
    dev.keepalive_train(clock, [t0 + 100_000, t0 + 200_000, t0 + 300_000])
    assert emu.state == w.RUNNING and clock.now_us() == t0 + 300_000
    # a train whose first frame comes 600 ms after the last one: the watchdog stops the device first
    dev.keepalive_train(clock, [t0 + 900_000, t0 + 1_000_000])
    wd = [f for f in emu.faults if f.code == w.FAULT_WATCHDOG]
    last_frame_dev = emu.time_us() - (clock.now_us() - (t0 + 300_000))
    assert emu.state == w.FAULTED and wd and wd[0].device_t_us == last_frame_dev + WATCHDOG_US
    dev.close()
