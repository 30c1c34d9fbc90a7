"""Live controls on virtual time cannot leave the checked envelope, and the record is what was delivered.

Random sequences of controls (intensity up and down per param, per channel or for everything, set values,
pause, resume, stop, emergency stop, an electrode fault injected on the device) at random session times,
against the loopback emulator in-process and the USB driver over pyusb with the same emulator behind it.
The oracle is written here from the schedule and the protocol's checked envelope alone:

(a) every pulse the emulator delivered is a scheduled pulse of its channel (same spacing, never twice), its
    amplitude at most the scheduled one scaled to the top the checker accepted for the param the channel
    follows (a channel that follows no adjustable param, or follows one only for some lines, is never
    above its scheduled amplitude), and a channel no request addressed is not scaled at all;
(b) the record read back from the real SQLite file says what the emulator delivered: counts and peaks per
    channel, each channel's final amplitude (the device's scale register), the param levels, and the pause
    and stop times (nothing delivered while the record says the output was paused or after it stopped).
"""
from __future__ import annotations

import math
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.drivers import wire
from stimscript.runtime import SessionController
from stimscript.runtime.records import RecordStore
from stimscript.runtime.testing import open_test_device

TEXT = """stimscript 1
protocol "Live envelope" { }
param intensity = 40 mA in 10 mA .. 120 mA "tolerated"
param baseline = 20 mA in 10 mA .. 30 mA
electrode small 1 cm x 2 cm
electrode big 5 cm x 9 cm
electrode a 5 cm x 9 cm
electrode b 5 cm x 9 cm
channel quad 1 { site vastus_medialis right; electrodes small -> big; pulse biphasic 400 us; frequency 100 Hz; amplitude intensity }
channel hams 2 { site biceps_femoris right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude 80% intensity }
channel glute 3 { site gluteus_maximus right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude baseline }
channel calf 4 { site soleus right; electrodes a -> b; pulse biphasic 300 us; frequency 40 Hz; amplitude intensity }
channel tib 5 { site tibialis_anterior right; electrodes a -> b; pulse biphasic 300 us; frequency 30 Hz; amplitude 25 mA }
cycle c { ramp up 1 s; hold 2 s; ramp down 500 ms; rest 1 s }
session {
    repeat 2 { quad, hams, glute, calf, tib: c }
    repeat 1 { quad, hams, glute, tib: c
               calf: c with amplitude 30 mA }
}
"""
# quad (1) and hams (2) follow `intensity`, glute (3) follows `baseline`, calf (4) follows `intensity` on some
# lines only (mixed: never scaled), tib (5) has a fixed amplitude
PROTO = stimscript.loads(TEXT, name="live_envelope.stim")
SCHED = PROTO.compile()
PULSES = SCHED.pulses
CHANNELS = (1, 2, 3, 4, 5)
PARAMS = ("intensity", "baseline")
RANGES = {n: PROTO.safe_range(n) for n in PARAMS}     # what `stimscript run` passes (commands/run.py)

# ---- the oracle's view of the envelope ---------------------------------------------------------------
#: the compiled full amplitude of each channel (its largest scheduled pulse)
NOMINAL = {c: int(PULSES["amplitude_ua"][PULSES["channel"] == c].max()) for c in CHANNELS}
#: the largest amplitude each channel may ever be delivered at: the peak the checker measured at the top of
#: the reachable range of the param it follows; its compiled peak when it follows no adjustable param
CEILING = dict(NOMINAL)
FOLLOWERS: dict[str, tuple] = {}
for _name in PARAMS:
    _lp = PROTO.live_param(_name)
    assert _lp.adjustable
    FOLLOWERS[_name] = _lp.channels
    CEILING.update(_lp.max_ua)
SCHEDULED = {c: PULSES[PULSES["channel"] == c] for c in CHANNELS}


def test_the_envelope_this_test_relies_on():
    """The protocol exercises every kind of channel: a reachable top below the declared one (power density on
    the small electrode), a proportional follower, another param, a mixed channel and a fixed one."""
    lp = PROTO.live_param("intensity")
    assert lp.channels == (1, 2) and lp.mixed == (4,) and 5 in lp.fixed
    assert lp.high.to_ua() < 120_000 and CEILING[1] == lp.high.to_ua()
    assert PROTO.live_param("baseline").channels == (3,) and CEILING[3] == 30_000
    assert CEILING[4] == NOMINAL[4] == 40_000 and CEILING[5] == NOMINAL[5] == 25_000
    # the top is what the checker accepted: compiling there passes, one µA more does not
    PROTO.compile(params={"intensity": lp.high})


# ---- random controls ---------------------------------------------------------------------------------
params = st.sampled_from([None, None, "intensity", "baseline"])
channels = st.sampled_from([None, None, None, 1, 2, 3, 4, 5, (1, 3), (2, 4, 5), 9])
steps = st.sampled_from([None, 1_000, 5_000, 30_000])
intensity_moves = st.tuples(st.sampled_from(["intensity_up", "intensity_up", "intensity_down"]), params, steps,
                            channels)
values = st.one_of(st.integers(0, 150_000), st.sampled_from(["45 mA", "0 mA", "200 mA", "12.5 mA"]))
set_values = st.tuples(st.just("set_intensity"), values, params, channels)
others = st.sampled_from([("pause",), ("resume",), ("resume",), ("stop",), ("estop",)])
controls = st.lists(st.tuples(st.integers(0, 16_000_000),
                              st.one_of(intensity_moves, intensity_moves, set_values, others)), max_size=12)
faults = st.one_of(st.none(), st.tuples(st.sampled_from(CHANNELS), st.integers(500_000, 14_000_000)))


def addressed(action: tuple) -> set[int]:
    """The channels an intensity request may change (the oracle's reading of the controls' documentation)."""
    name = action[0]
    if name not in ("intensity_up", "intensity_down", "set_intensity"):
        return set()
    param = action[2] if name == "set_intensity" else action[1]
    chans = action[3]
    if chans is not None:
        return {chans} if isinstance(chans, int) else set(chans)
    if param is not None:
        return set(FOLLOWERS[param])
    return set(CHANNELS)


def run_session(kind: str, plan, fault, db: Path):
    ctl = SessionController(intensity_step_ua=1_000, slew_ua_per_s=20_000, max_pause_s=3)
    for t, action in plan:
        ctl.at(t, action[0], *action[1:])
    dev = open_test_device(kind)
    em = dev.emulator
    if fault is not None:
        em.inject_electrode_fault(fault[0], fault[1])
    try:
        rec = stimscript.run(SCHED, device=dev, controller=ctl, db=db, param_ranges=RANGES, db_interval_s=0)
        out = em.output.copy()
        state, scale_ppm = wire.STATE_NAMES[em.state], [int(x) for x in em.scale_ppm]
    finally:
        dev.close()
    with RecordStore(db) as store:
        back = store.get(rec.id)
    return rec, back, out, state, scale_ppm


def offsets_from_resumes(rec) -> tuple[list[int], list[int]]:
    """(session time of each resume, total pause before schedule time continues) from the record's log."""
    at, shift, total = [], [], 0
    for e in rec.events:
        if e.kind == "resume":
            total += e.duration_us
            at.append(e.session_us)
            shift.append(total)
    return at, shift


def check_envelope_and_record(plan, fault, rec, back, out, state, scale_ppm):
    touched = set().union(*(addressed(a) for _, a in plan)) if plan else set()
    # ---- (a) inside the envelope ----
    resume_at, shift = offsets_from_resumes(back)
    for c in CHANNELS:
        mine = out[out["channel"] == c]
        sched = SCHEDULED[c]
        t = mine["t_us"].astype(np.int64)
        amp = mine["amplitude_ua"].astype(np.int64)
        assert (amp > 0).all()
        assert int(amp.max(initial=0)) <= CEILING[c], f"channel {c} above its checked top"
        # each delivered pulse is a scheduled pulse of this channel, moved later by the pauses before it
        k = np.searchsorted(np.asarray(resume_at, dtype=np.int64), t, side="right")
        moved = t - np.concatenate([[0], np.asarray(shift, dtype=np.int64)])[k]
        j = np.searchsorted(sched["t_us"], moved)
        assert (j < len(sched)).all(), f"channel {c}: a pulse at no scheduled time"
        assert np.array_equal(sched["t_us"][j], moved), f"channel {c}: a pulse at no scheduled time"
        assert (np.diff(j) > 0).all(), f"channel {c}: a scheduled pulse delivered twice"
        a_sched = sched["amplitude_ua"][j].astype(np.int64)
        # at most the scheduled amplitude scaled to the checked top (ceil: the device rounds half to even)
        limit = -(-a_sched * CEILING[c] // NOMINAL[c])
        assert (amp <= limit).all(), f"channel {c}: a pulse above its scheduled amplitude at the top"
        if c not in touched or c in (4, 5):
            assert (amp <= a_sched).all(), f"channel {c} was scaled up"
        if c not in touched:
            assert scale_ppm[c] == 1_000_000, f"channel {c} scaled although no request addressed it"
        # the rate is the schedule's: consecutive pulses never closer than scheduled ones
        if len(t) > 1:
            assert np.diff(t).min() >= np.diff(sched["t_us"]).min()
    # ---- (b) the record is what was delivered ----
    for r in (rec, back):
        for c in CHANNELS:
            mine = out["amplitude_ua"][out["channel"] == c]
            assert r.delivered.get(c, 0) == len(mine)
            assert r.peak_ua.get(c, 0) == (int(mine.max()) if len(mine) else 0)
            # the final amplitude the record keeps is the device's scale register applied to the channel
            assert r.channel_ua[c] == round(NOMINAL[c] * scale_ppm[c] / 1_000_000)
        for name, chans in FOLLOWERS.items():
            v0 = PROTO.live_param(name).value_ua
            levels = {round(Fraction(r.channel_ua[c] * v0, NOMINAL[c])) for c in chans}
            if len(levels) == 1:
                assert r.intensity_ua.get(name) == levels.pop()
        assert sum(r.delivered.values()) == len(out)
    end = back.end_reason
    kinds = {a[0] for _, a in plan}
    if end == "emergency_stop":
        assert state == "estopped" and "estop" in kinds
        (estop,) = [e for e in back.events if e.kind == "emergency_stop"]
        assert len(out) == 0 or int(out["t_us"].max()) <= estop.session_us
    elif end == "fault":
        # the faulted channel stops at the fault; the runtime then ends the session (ESTOP: every channel off)
        assert fault is not None and state in ("faulted", "estopped")
        (ev,) = [e for e in back.events if e.kind == "fault"]
        assert ev.channel == fault[0] and ev.session_us >= fault[1]
        on_it = out["t_us"][out["channel"] == fault[0]]
        assert len(on_it) == 0 or int(on_it.max()) <= ev.session_us
        (end_ev,) = [e for e in back.events if e.kind == "end"]
        assert len(out) == 0 or int(out["t_us"].max()) <= end_ev.session_us
    elif end == "stopped":
        assert kinds & {"stop", "pause"}
        stop = [e for e in back.events if e.kind == "stop"][0]
        # a stop ramps down within 1 s: nothing is delivered after that
        assert len(out) == 0 or int(out["t_us"].max()) <= stop.session_us + 1_000_000
    else:
        assert end == "completed", (end, back.end_detail)
        if not kinds & {"intensity_down", "set_intensity", "pause"}:
            # (a pause ramp may bring a pulse to 0 µA: skipped on purpose, the session still completes)
            assert back.delivered == {c: len(SCHEDULED[c]) for c in CHANNELS}
    # while the record says the output was paused, nothing was delivered
    pauses = [e.session_us for e in back.events if e.kind == "pause"]
    for i, p in enumerate(pauses):
        until = resume_at[i] if i < len(resume_at) else math.inf
        assert not ((out["t_us"] > p) & (out["t_us"] < until)).any(), "a pulse while the record says paused"
    assert len([e for e in back.events if e.kind == "resume"]) <= len(pauses)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["loopback", "usb-loopback"]), plan=controls, fault=faults)
# a resume asked for during the pause ramp while intensity slews: the host's estimate of device time trailed
# the device by 2 µs (the "paused" report is stamped with the ramp's end), the resume was placed there and the
# pulses put back at that instant arrived late (5 underruns, the session ended "degraded")
@example(kind="loopback", fault=None,
         plan=[(100_000, ("pause",)), (100_000, ("resume",)), (100_000, ("set_intensity", 0, None, None)),
               (100_001, ("intensity_up", None, None, None)), (100_000, ("resume",))])
def test_no_control_sequence_leaves_the_checked_envelope_and_the_record_is_what_was_delivered(kind, plan, fault):
    with tempfile.TemporaryDirectory() as tmp:
        rec, back, out, state, scale_ppm = run_session(kind, plan, fault, Path(tmp) / "r.sqlite")
    check_envelope_and_record(plan, fault, rec, back, out, state, scale_ppm)


def test_raising_everything_far_past_the_top_stays_at_the_checked_top_on_both_paths():
    """The extreme case written out: every request asks for far more than the checker accepted."""
    plan = [(500_000, ("set_intensity", "200 mA", None, None)),
            (600_000, ("intensity_up", "intensity", 30_000, None)),
            (700_000, ("set_intensity", 150_000, None, (1, 2, 3, 4, 5))),
            (800_000, ("intensity_up", None, 30_000, 5))]
    for kind in ("loopback", "usb-loopback"):
        with tempfile.TemporaryDirectory() as tmp:
            rec, back, out, state, scale_ppm = run_session(kind, plan, None, Path(tmp) / "r.sqlite")
        check_envelope_and_record(plan, None, rec, back, out, state, scale_ppm)
        peaks = {c: int(out["amplitude_ua"][out["channel"] == c].max()) for c in CHANNELS}
        assert peaks[1] == CEILING[1] and peaks[3] == 30_000           # followers reach their checked tops
        assert peaks[4] == 40_000 and peaks[5] == 25_000                # mixed and fixed stay as compiled
        assert back.channel_ua == {1: CEILING[1], 2: back.channel_ua[2], 3: 30_000, 4: 40_000, 5: 25_000}
        assert back.channel_ua[2] <= CEILING[2]
