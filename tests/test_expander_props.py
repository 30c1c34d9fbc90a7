"""Invariants of schedule expansion, run against whichever twin the selector picked (docs/language.md, semantics).

Everything goes through ``stimscript.compiler.expander`` and ``Schedule``, so with
``STIMSCRIPT_NO_EXTENSIONS=1`` these check the pure-Python reference and otherwise the Cython twin.
"""
from __future__ import annotations

import gc
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from stimscript.compiler import expander
from stimscript.compiler.expand_py import round_div
from stimscript.compiler.ir import PULSE_DTYPE, PulseShape, Train
from stimscript.compiler.schedule import Schedule

US = 1_000_000
SHAPES = (PulseShape(((250, 1.0), (50, 0.0), (250, -1.0)), kind="biphasic"),)


def make_train(channel=1, start=0, cycles=1, on=10 * US, up=0, down=0, rest=0, hz=Fraction(50),
               amp=Fraction(40_000), shape=0) -> Train:
    period = Fraction(US) / Fraction(hz)
    amp = Fraction(amp)
    return Train(channel=channel, start_us=start, cycles=cycles, cycle_us=on + rest, on_us=on, ramp_up_us=up,
                 ramp_down_us=down, period_num=period.numerator, period_den=period.denominator,
                 amp_num=amp.numerator, amp_den=amp.denominator, shape=shape)


def exact_slots(period: Fraction, k: np.ndarray) -> np.ndarray:
    """round_half_even(k * period) in int64, vectorised and exact (k * numerator stays far below 2**63)."""
    num = np.asarray(k, dtype=np.int64) * period.numerator
    q, r = np.divmod(num, period.denominator)
    twice = 2 * r
    return q + ((twice > period.denominator) | ((twice == period.denominator) & (q % 2 == 1)))


def assert_sorted(p: np.ndarray, strict: bool = True) -> None:
    t, ch = p["t_us"], p["channel"].astype(np.int64)
    dt = np.diff(t)
    assert (dt >= 0).all(), "t_us goes backwards"
    same = dt == 0
    if strict:  # valid schedules never repeat (t, channel)
        assert (np.diff(ch)[same] > 0).all(), "channels out of order at equal t_us"
    else:
        assert (np.diff(ch)[same] >= 0).all(), "channels out of order at equal t_us"


@st.composite
def one_train_per_channel(draw) -> list[Train]:
    channels = draw(st.lists(st.integers(1, 8), min_size=1, max_size=8, unique=True))
    out = []
    for ch in channels:
        den = draw(st.sampled_from([1, 3, 10]))
        hz = Fraction(draw(st.integers(den, 1000 * den)), den)
        on = draw(st.integers(0, 800_000))
        up = draw(st.one_of(st.just(0), st.integers(0, on)))
        down = draw(st.one_of(st.just(0), st.integers(0, on - up)))
        amp = Fraction(draw(st.integers(1, 120_000 * 7)), draw(st.sampled_from([1, 7])))
        out.append(make_train(channel=ch, start=draw(st.integers(0, 200_000)), cycles=draw(st.integers(1, 3)),
                              on=on, up=up, down=down, rest=draw(st.integers(0, 500_000)), hz=hz, amp=amp))
    return out


# --- ordering, window, amplitude bounds ----------------------------------------------------------------
@given(trains=one_train_per_channel(), data=st.data())
def test_sorted_inside_window_and_amplitude_bounded(trains, data):
    end = max(tr.end_us for tr in trains)
    t0 = data.draw(st.integers(-1000, end))
    t1 = data.draw(st.integers(t0 + 1, end + 1000))
    p = expander.expand(trains, t0, t1)
    assert p.dtype == PULSE_DTYPE
    assert_sorted(p)
    assert ((p["t_us"] >= t0) & (p["t_us"] < t1)).all()
    assert len(p) == expander.count(trains, t0, t1)
    for tr in trains:
        amps = p["amplitude_ua"][p["channel"] == tr.channel]
        assert (amps >= 1).all(), "zero-amplitude slots must not be emitted"
        assert (amps <= round_div(tr.amp_num, tr.amp_den)).all(), "amplitude above round(A)"


@given(trains=one_train_per_channel(), cuts=st.lists(st.integers(-1000, 5 * US), max_size=6))
def test_window_pieces_concatenate_to_the_whole(trains, cuts):
    end = max(tr.end_us for tr in trains) + 1
    edges = sorted({0, end, *[c for c in cuts if 0 < c < end]})
    whole = expander.expand(trains, 0, end)
    pieces = [expander.expand(trains, a, b) for a, b in zip(edges, edges[1:])]
    assert np.array_equal(np.concatenate(pieces), whole)
    assert sum(expander.count(trains, a, b) for a, b in zip(edges, edges[1:])) == len(whole)


# --- time grid: no drift -------------------------------------------------------------------------------
def test_no_drift_over_24h_at_33_3_hz():
    period = Fraction(US) / Fraction(333, 10)
    on = 24 * 3600 * US
    sched = Schedule.from_trains([make_train(on=on, hz=Fraction(333, 10), amp=10_000)], SHAPES)
    # total: the first k whose slot reaches on_us is exactly 24 h * 33.3 Hz (no accumulated error)
    n_slots = 24 * 3600 * 333 // 10
    assert round_div(n_slots * period.numerator, period.denominator) == on
    assert round_div((n_slots - 1) * period.numerator, period.denominator) < on
    assert sched.count() == n_slots == 2_877_120
    # first, last and sampled stretches of 40 slots each, without materialising the whole day
    rng = np.random.default_rng(333)
    starts = [0, 1, 12_345, n_slots // 2, n_slots - 40, *rng.integers(0, n_slots - 40, 12).tolist()]
    for k0 in starts:
        k = np.arange(k0, k0 + 40)
        want = exact_slots(period, k)
        got = sched.window(int(want[0]), int(want[-1]) + 1)
        assert np.array_equal(got["t_us"], want), f"drift near slot {k0}"
    tail = sched.window(on - 100_000, on + 1)
    assert int(tail["t_us"][-1]) == round_div((n_slots - 1) * period.numerator, period.denominator)
    if expander.USING_EXTENSION:  # cheap in C: check every one of the 2.9 M slots
        p = sched.pulses
        assert len(p) == n_slots
        assert np.array_equal(p["t_us"], exact_slots(period, np.arange(n_slots)))
        assert (p["amplitude_ua"] == 10_000).all()


# --- ramps ---------------------------------------------------------------------------------------------
@given(hz=st.integers(1, 1000), up=st.integers(1, 5 * US), amp=st.integers(1, 120_000),
       hold=st.integers(0, US))
def test_ramp_up_strictly_increasing_when_step_exceeds_one_ua(hz, up, amp, hold):
    period = Fraction(US, hz)
    # consecutive slots are at least period - 1 µs apart after rounding; a step above 1 µA over that
    # spacing keeps round-half-even from repeating a value (1.5 -> 2, 2.5 -> 2 needs a step of exactly 1)
    assume(amp * (period - 1) / up > 1)
    assume(up // period <= 5000)
    tr = make_train(on=up + hold, up=up, hz=hz, amp=amp)
    p = expander.expand([tr], 0, up)
    amps = p["amplitude_ua"].astype(np.int64)
    first_offset = round_div(period.numerator, period.denominator)
    assert (len(p) >= 1) if first_offset < up else (len(p) == 0)
    if len(p):
        assert amps[0] > 0
        assert (np.diff(amps) > 0).all()
        assert amps[-1] <= amp


def test_design_ramp_amplitudes():
    tr = make_train(on=15 * US, up=3 * US, hz=50, amp=40_000)
    p = expander.expand([tr], 0, 3 * US)
    assert len(p) == 149  # slot 0 (e = 0) is dropped
    assert p["t_us"][0] == 20_000 and p["amplitude_ua"][0] == 267  # round(40000 * 20000 / 3e6)
    assert (np.diff(p["amplitude_ua"]) > 0).all()
    hold = expander.expand([tr], 3 * US, 15 * US)
    assert (hold["amplitude_ua"] == 40_000).all() and len(hold) == 600


# --- worked counts of the language reference --------------------------------------------------------------------------------
def test_design_count_ramp_and_hold_749():
    sched = Schedule.from_trains([make_train(on=15 * US, up=3 * US, hz=50)], SHAPES)
    assert sched.count() == 749 == len(sched.pulses)


def test_design_count_no_ramp_500():
    sched = Schedule.from_trains([make_train(on=10 * US, hz=50)], SHAPES)
    assert sched.count() == 500 == len(sched.pulses)
    assert np.array_equal(sched.pulses["t_us"], np.arange(500) * 20_000)


def test_count_with_ramp_down_449():
    # 2 s up, 5 s hold, 2 s down at 50 Hz: 450 slots, only slot 0 (e = 0) dropped; the last slot,
    # 20 ms before on_end, still has e = 0.01
    sched = Schedule.from_trains([make_train(on=9 * US, up=2 * US, down=2 * US, hz=50)], SHAPES)
    assert sched.count() == 449 == len(sched.pulses)
    assert sched.pulses["amplitude_ua"][-1] == 400


def test_cycles_repeat_with_rest():
    tr = make_train(cycles=15, on=15 * US, up=3 * US, rest=45 * US, hz=50, amp=45_000)
    sched = Schedule.from_trains([tr], SHAPES)
    assert sched.duration_us == 15 * 60 * US
    p = sched.pulses
    assert len(p) == sched.count() == 15 * 749
    first = p[:749]
    assert first["t_us"][-1] < 15 * US
    for c in range(15):
        cyc = p[c * 749:(c + 1) * 749]
        assert np.array_equal(cyc["t_us"] - c * 60 * US, first["t_us"])
        assert np.array_equal(cyc["amplitude_ua"], first["amplitude_ua"])
    # nothing during the rests
    offsets = p["t_us"] % (60 * US)
    assert (offsets < 15 * US).all()


def test_multichannel_interleaving_and_counts():
    trains = [make_train(channel=ch, start=(ch - 1) * 500, cycles=2, on=10 * US, up=US, rest=5 * US,
                         hz=Fraction(100 * ch, 3)) for ch in (1, 2, 3, 4)]
    sched = Schedule.from_trains(trains, SHAPES)
    p = sched.pulses
    assert_sorted(p)
    assert sched.counts() == {ch: int((p["channel"] == ch).sum()) for ch in (1, 2, 3, 4)}
    assert sum(sched.counts().values()) == len(p) == len(sched)


# --- streaming -------------------------------------------------------------------------------------------
def _blocky_schedule() -> Schedule:
    trains = [
        make_train(channel=1, start=0, cycles=3, on=2 * US, up=500_000, down=300_000, rest=US, hz=40),
        make_train(channel=2, start=250, cycles=2, on=3 * US, up=0, rest=500_000, hz=Fraction(333, 10)),
        make_train(channel=3, start=4 * US, cycles=1, on=US, up=US // 2, hz=7, amp=3),
        make_train(channel=1, start=9 * US, cycles=1, on=US, hz=100),   # after channel 1's first train
    ]
    return Schedule.from_trains(trains, SHAPES, duration_us=12 * US)


@pytest.mark.parametrize("max_pulses", [1, 2, 7, 64, 1000, 65536])
def test_blocks_concatenate_to_pulses(max_pulses):
    sched = _blocky_schedule()
    blocks = list(sched.blocks(max_pulses))
    assert all(1 <= len(b) <= max_pulses for b in blocks)
    assert all(b.dtype == PULSE_DTYPE for b in blocks)
    whole = np.concatenate(blocks) if blocks else np.zeros(0, PULSE_DTYPE)
    assert np.array_equal(whole, sched.pulses)
    assert len(whole) == sched.count()


def test_blocks_rejects_zero():
    with pytest.raises(ValueError):
        next(_blocky_schedule().blocks(0))


def test_blocks_of_empty_and_idle_schedules():
    assert list(Schedule.from_trains([], SHAPES, duration_us=10 * US).blocks()) == []
    late = Schedule.from_trains([make_train(start=3600 * US, on=US, hz=10)], SHAPES)
    blocks = list(late.blocks(4))
    assert np.array_equal(np.concatenate(blocks), late.pulses) and len(late.pulses) == 10


def _stream_peak(sched: Schedule, max_pulses: int) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        n = 0
        for block in sched.blocks(max_pulses):
            n += len(block)
        return tracemalloc.get_traced_memory()[1], n
    finally:
        tracemalloc.stop()


def test_blocks_memory_flat_24h_vs_1h():
    """Peak streaming memory of a 24 h session stays within 1.5x that of a 1 h one (4 channels)."""
    if expander.USING_EXTENSION:
        hz, max_pulses = 100, 65536   # the reference case: 34.6 M pulses streamed in well under a second
    else:
        hz, max_pulses = Fraction(1, 2), 2048   # the pure-Python reference: same shape, fewer pulses
    peaks = {}
    for hours in (1, 24):
        on = hours * 3600 * US
        trains = [make_train(channel=ch, start=(ch - 1) * 1000, on=on, hz=hz) for ch in (1, 2, 3, 4)]
        peak, n = _stream_peak(Schedule.from_trains(trains, SHAPES), max_pulses)
        assert n == 4 * hz * hours * 3600
        peaks[hours] = peak
    assert peaks[24] <= 1.5 * peaks[1], peaks
