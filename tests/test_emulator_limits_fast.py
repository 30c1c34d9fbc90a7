"""The emulator's cheap limit checks never let a violation through: whenever its whole-array spacing check says
"fine", an independent per-channel walk finds no pulse closer than the device's slot spacing to the previous one
of its channel; and over-limit pulses still fault when a scale above 1 or a large amplitude could reach the limit."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stimscript.clock import VirtualClock
from stimscript.drivers.emulator import Emulator
from stimscript.drivers.loopback import LoopbackDriver
from stimscript.pulses import PULSE_DTYPE, PulseShape

MIN_GAP = 1000


def walk(t, ch, last):
    """Independent oracle: per pulse in order, is it closer than MIN_GAP to the previous one of its channel?"""
    prev = dict(last)
    out = []
    for ti, ci in zip(t.tolist(), ch.tolist()):
        out.append(ti - prev.get(ci, -(1 << 60)) < MIN_GAP)
        prev[ci] = ti
    return np.array(out, dtype=bool)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 8)), min_size=1, max_size=40),
       st.dictionaries(st.integers(1, 8), st.integers(-3000, 0), max_size=8))
def test_the_fast_spacing_check_never_passes_a_violation(pulses, last):
    emu = Emulator()
    t = np.array(sorted(p[0] for p in pulses), dtype=np.int64)
    ch = np.array([p[1] for p in pulses], dtype=np.uint8)
    for c, v in last.items():
        emu._last_t[c] = v
    oracle = walk(t, ch, {c: int(emu._last_t[c]) for c in range(1, 9)})
    assert np.array_equal(emu._too_close(t, ch, MIN_GAP), oracle)
    if emu._spacing_ok(t, ch, MIN_GAP):
        assert not oracle.any()
    else:   # it says "look closer" only when there is something to find
        assert oracle.any()


def _one_pulse_run(amplitude_ua, scale):
    shape = PulseShape(((200, 1.0), (200, -1.0)), "b")
    emu = Emulator(capture=True)
    dev = LoopbackDriver(emulator=emu)
    clock = VirtualClock()
    dev.use_clock(clock)
    dev.open()
    dev.upload_shapes([shape])
    t0 = dev.device_time_us() + 10_000
    dev.start(t0)
    dev.set_scale(0, scale)       # a session starts at scale 1: the register is set for this one
    p = np.zeros(3, dtype=PULSE_DTYPE)
    p["t_us"] = t0 + np.array([1000, 21_000, 41_000])
    p["channel"] = 1
    p["amplitude_ua"] = amplitude_ua
    dev.send_block(p)
    clock.advance(100_000)
    dev.poll()
    dev.close()
    return emu


def test_a_scale_above_one_still_faults_an_amplitude_it_pushes_over_the_limit():
    emu = _one_pulse_run(100_000, 1.5)       # 150 mA > 120 mA
    assert [f.kind for f in emu.faults] == ["over_limit"] and len(emu.output) == 0


def test_the_bound_lets_a_legal_session_through_and_an_illegal_amplitude_faults():
    ok = _one_pulse_run(100_000, 1.0)
    assert ok.faults == [] and len(ok.output) == 3
    bad = _one_pulse_run(130_000, 0.5)        # queued above the limit, delivered at 65 mA: allowed
    assert bad.faults == [] and np.all(bad.output["amplitude_ua"] == 65_000)
    over = _one_pulse_run(130_000, 1.0)
    assert [f.kind for f in over.faults] == ["over_limit"]
