"""The export of a ScienceMode session (byte-level emulator on a real pseudo-terminal, driver through pyserial)
equals what that emulator delivered within the bounds of the driver's fidelity report.

A ScienceMode stimulator runs its own pulse generator (mid level) or gets pulses one by one (low level): the
host knows the scheduled pulses the device confirmed, not the device's own pulse instants. The export is
therefore the schedule as confirmed; the fidelity report says how far the device's output may be from it
(pulses per on-phase, onset delay, period, amplitude step). The oracle is the emulator's own output.
"""
from __future__ import annotations

import numpy as np
import pytest

import stimscript
from stimscript.drivers.sciencemode.emulator import ScienceModeEmulator
from stimscript.programs.fidelity import fidelity
from stimscript.research.delivery import load_delivery

PROTOCOL = """stimscript 1
protocol "ScienceMode export" { }
param intensity = 30 mA in 10 mA .. 50 mA
electrode a 5 cm x 5 cm
electrode b 5 cm x 5 cm
electrode c 5 cm x 5 cm
electrode d 5 cm x 5 cm
channel one 1 {
    site quadriceps right
    electrodes a -> b
    pulse biphasic 250 us gap 50 us
    frequency 50 Hz
    amplitude intensity
}
channel two 2 {
    site hamstrings right
    electrodes c -> d
    pulse biphasic 250 us gap 50 us
    frequency 50 Hz
    amplitude intensity
}
cycle contraction { ramp up 500 ms; hold 1500 ms; rest 1 s }
session {
    repeat 3 {
        one: contraction
        two: contraction after 300 ms
    }
}
"""


def schedule():
    return stimscript.loads(PROTOCOL, name="sm_export.stim").compile()


def on_phases(t: np.ndarray, gap_us: int = 100_000) -> list[np.ndarray]:
    if not len(t):
        return []
    return np.split(t, np.nonzero(np.diff(t) > gap_us)[0] + 1)


@pytest.mark.parametrize("model,mode", [("p24", "mid-level"), ("rehamove3", "mid-level"), ("p24", "low-level")])
def test_export_equals_the_emulator_output_within_the_fidelity_bounds(model, mode, tmp_path):
    s = schedule()
    emu = ScienceModeEmulator(model, seed=11)
    dev = stimscript.open_device(model, emulator=emu, mode=mode, max_current_ma=60)
    try:
        assert dev.port.startswith("/dev/pts/")                 # the real pty path
        rep = fidelity(s, dev.timing_model)
        db = tmp_path / "r.sqlite"
        rec = stimscript.run(s, device=dev, realtime=False, db=db)
        assert rec.end_reason == "completed", rec.faults
        out = emu.output.copy()
        origin = emu.origin + emu._boot                         # the emulator's time zero on the shared clock
    finally:
        dev.close()
    d = load_delivery(rec.id, db=db)                            # rebuilt and verified against the record
    assert len(d.pulses) == sum(rec.delivered.values()) == len(s.pulses)
    slack = dev.poll_interval_us                                # the runtime polls the driver this often
    for tf in rep.trains:
        lo, hi = tf.device_pulses_per_on_phase
        early, late = tf.onset_uncertainty_us
        mine = d.pulses[d.pulses["channel"] == tf.channel]
        theirs = out[out["channel"] == tf.channel]
        exp_phases = on_phases(mine["t_us"].astype(np.int64))
        emu_phases = on_phases(theirs["t_us"].astype(np.int64) + origin - rec.epoch_us)
        assert len(exp_phases) == len(emu_phases) == tf.on_phases
        for e, m in zip(exp_phases, emu_phases):
            assert lo <= len(m) <= hi, (len(m), lo, hi)         # the device's pulse count per on-phase
            assert early <= m[0] - e[0] <= late + slack          # its onset delay
            assert abs((m[-1] - m[0]) - (e[-1] - e[0])) <= tf.device_period_us + abs(late - early) + slack
        if mode == "mid-level":
            spacing = np.diff(theirs["t_us"].astype(np.int64))
            assert set(spacing[spacing < 100_000].tolist()) == {tf.device_period_us}
        # amplitudes: the export has the scheduled ones; the device's differ by at most its step, or the
        # ramp staircase the report names
        bound = max(tf.amplitude_step_ua, tf.ramp_staircase_ua) + abs(tf.device_amplitude_ua - tf.amplitude_ua)
        assert int(mine["amplitude_ua"].max()) == tf.amplitude_ua
        assert abs(int(theirs["amplitude_ua"].max()) - tf.amplitude_ua) <= bound
        assert int(theirs["amplitude_ua"].min()) >= 0 and int(theirs["amplitude_ua"].max()) <= tf.device_amplitude_ua
