"""Rebuilding the delivered pulses from a record: equal to what the loopback emulator delivered, bit for bit.

The oracle is the emulator's own output (``dev.emulator.output``), an independent implementation of the
device; the rebuild only sees the schedule and the record's device log.
"""
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stimscript
from stimscript.research.rebuild import RebuildError, RebuildMismatch, rebuild
from stimscript.runtime import RecordStore, SessionController
from stimscript.runtime.testing import nmes_schedule

COLS = ["t_us", "channel", "amplitude_ua", "shape"]


def run_loopback(schedule, controls=(), db=None, injections=(), **kw):
    ctl = SessionController(**kw)
    for t, action, *args in controls:
        ctl.at(t, action, *args)
    dev = stimscript.open_device("loopback", capture=True)
    for kind, *args in injections:
        getattr(dev.emulator, kind)(*args)
    rec = stimscript.run(schedule, device=dev, controller=ctl, record=db is not None, db=db,
                         param_ranges={"intensity": (0, 60_000)})
    out = dev.emulator.output.copy()
    dev.close()
    return rec, out


def same(delivered, output) -> bool:
    return len(delivered) == len(output) and all(np.array_equal(delivered[c], output[c]) for c in COLS)


CONTROL_SCRIPT = [(2_000_000, "intensity_up"), (2_300_000, "intensity_up"), (11_500_000, "pause"),
                  (14_000_000, "resume"), (20_000_000, "intensity_down"), (31_000_000, "pause"),
                  (33_000_000, "resume"), (40_000_000, "set_intensity", 35_000), (52_000_000, "stop")]


def test_rebuild_equals_emulator_output_with_intensity_changes_and_pauses(tmp_path):
    sched = nmes_schedule(channels=3, seconds=70, stagger_us=1_234_567)
    rec, out = run_loopback(sched, CONTROL_SCRIPT, db=tmp_path / "r.sqlite")
    assert rec.end_reason == "stopped"
    # read back from the database: the rebuild only has what the record keeps
    with RecordStore(tmp_path / "r.sqlite") as store:
        stored = store.get(rec.id)
    got = rebuild(sched, stored.device_log, stored.delivered, stored.peak_ua)
    assert same(got, out)
    assert len(np.unique(out["amplitude_ua"])) > 100          # ramps, live changes and pause ramps all there
    assert got["period"].max() == 2                           # two resumes: three stretches of output
    assert stored.device_log["acked"] == len(out)


@pytest.mark.parametrize("ending", ["estop", "electrode", "watchdog", "complete"])
def test_rebuild_equals_emulator_output_for_every_ending(ending):
    sched = nmes_schedule(channels=2, seconds=35, on_s=6, off_s=6, stagger_us=700_000)
    controls, injections = [(1_500_000, "intensity_down")], []
    if ending == "estop":
        controls.append((8_123_457, "estop"))
    elif ending == "electrode":
        injections.append(("inject_electrode_fault", 2, 3_210_987))
    elif ending == "watchdog":
        controls.append((7_000_000, "stall", 2_000_000))
    rec, out = run_loopback(sched, controls, injections=injections)
    expected = {"estop": "emergency_stop", "electrode": "fault", "watchdog": "fault", "complete": "completed"}
    assert rec.end_reason == expected[ending]
    got = rebuild(sched, rec.device_log, rec.delivered, rec.peak_ua)
    assert same(got, out)


CONTROLS = st.sampled_from(["pause", "resume", "intensity_up", "intensity_down", "stop"])
# times on the pulse grid (25 ms) and off it, so messages and pulses often meet at the very same instant
INSTANTS = st.integers(0, 960).map(lambda k: k * 25_000 + 8_333 * (k % 3))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(0, 24_000_000), INSTANTS), CONTROLS), max_size=8),
       st.one_of(st.integers(0, 600), st.sampled_from([0, 1, 25])),
       st.one_of(st.integers(0, 1000), st.sampled_from([0, 1, 25])))
@example([(225_000, "pause")], 0, 0)                        # a 0 ms pause at a pulse (played once)
@example([(75_000, "pause"), (75_000, "resume"), (108_333, "pause")], 0, 0)   # resumed and paused at once
@example([(0, "intensity_up"), (75_000, "pause"), (75_000, "resume")], 0, 0)  # a scale change at the resume
def test_rebuild_matches_emulator_for_random_controls(controls, pause_ms, resume_ms):
    sched = nmes_schedule(channels=2, seconds=26, on_s=4, off_s=3, ramp_s=0.5, freq_hz=40, stagger_us=333_333)
    controls = controls + [(25_000_000, "resume")]   # a paused session waits for its resume
    rec, out = run_loopback(sched, controls, pause_ramp_ms=pause_ms, resume_ramp_ms=resume_ms,
                            intensity_step_ua=3_000)
    got = rebuild(sched, rec.device_log, rec.delivered, rec.peak_ua)
    assert same(got, out)


def test_a_tampered_record_is_a_mismatch_not_an_export():
    sched = nmes_schedule(channels=2, seconds=30)
    rec, out = run_loopback(sched, [(3_000_000, "intensity_down")])
    log = json.loads(json.dumps(rec.device_log))
    # drop the live intensity change from the log: counts still match, amplitudes do not
    log["events"] = [e for e in log["events"] if not (e[0] == "status" and e[4][0] != 1_000_000)]
    with pytest.raises(RebuildMismatch, match="SHA-256|peak"):
        rebuild(sched, log, rec.delivered, rec.peak_ua)
    with pytest.raises(RebuildMismatch, match="channel 1: rebuilt"):
        rebuild(sched, rec.device_log, {**rec.delivered, 1: rec.delivered[1] - 1}, rec.peak_ua)
    with pytest.raises(RebuildError, match="no device log"):
        rebuild(sched, {}, rec.delivered, rec.peak_ua)


def test_a_pulse_at_the_instant_of_a_0_ms_pause_is_delivered_once():
    # the device delivers the pulse at the pause instant, then switches off: the runtime must not send it again
    sched = nmes_schedule(channels=2, seconds=26, on_s=4, off_s=3, ramp_s=0.5, freq_hz=40, stagger_us=333_333)
    rec, out = run_loopback(sched, [(225_000, "pause"), (3_000_000, "resume")], pause_ramp_ms=0, resume_ramp_ms=0)
    assert rec.end_reason == "completed"
    assert len(out) == len(sched.pulses) == sum(rec.delivered.values())
    assert len(np.unique(out["t_us"][out["channel"] == 1])) == int(np.count_nonzero(out["channel"] == 1))
    assert same(rebuild(sched, rec.device_log, rec.delivered, rec.peak_ua), out)
